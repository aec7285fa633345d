//! The `profilegate` subcommands that work on the configured store from the command line
//! (`users.rs`: `profilegate users show|erase|export|import`; `stats.rs`: `profilegate stats`),
//! with or without profilegate running: sled allows one process per directory, so with sled
//! they need profilegate stopped; PostgreSQL is shared. `main.rs` parses the command line and
//! calls them. `users` exit codes: 0 done, 1 not found or rejected lines, 2 a configuration or
//! store error.

pub mod stats;
pub mod users;

use std::process::ExitCode;

use crate::config::Config;
use crate::store::{ProfileStore, StoreError};

/// Exit code 1: the user was not found, or lines were rejected.
pub const EXIT_REFUSED: u8 = 1;
/// Exit code 2: the configuration or the store failed.
pub const EXIT_FAILED: u8 = 2;

/// A runtime for one command (the store's I/O needs tokio).
pub fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("profilegate: cannot start the async runtime: {e}");
            ExitCode::from(EXIT_FAILED)
        })
}

/// Opens the configured store, saying what to do when it is sled and profilegate runs.
pub async fn open_store(config: &Config) -> Result<std::sync::Arc<dyn ProfileStore>, ExitCode> {
    crate::store::open(&config.store).await.map_err(|e| {
        match &e {
            StoreError::Locked { path } => eprintln!(
                "profilegate: the store at {path} is in use by a running profilegate: stop \
                 profilegate first (sled allows one process per directory), or use PostgreSQL"
            ),
            other => eprintln!("profilegate: cannot open the store: {other}"),
        }
        ExitCode::from(EXIT_FAILED)
    })
}
