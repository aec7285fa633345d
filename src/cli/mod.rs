//! The command-line tools beside `run` and `check`, working on the configured store directly
//! (sled with profilegate stopped; PostgreSQL while it runs): `profilegate stats` (`stats.rs`).
//! main.rs parses the command line and calls them.

pub mod stats;
