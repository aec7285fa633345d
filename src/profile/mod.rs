//! Progressive profiling: the questions an administrator configured (model and validation),
//! the engine that picks what to ask at each login, and the typed answers.

pub mod answer;

pub use answer::{header_name, AnswerValue};
pub mod engine;

pub use engine::{Engine, Picked};
