//! [`StoreError`]: what can go wrong in the store, for every backend. The start-up code and the
//! handlers map it to their own errors (see `crate::error`).

/// What can go wrong in the store. Messages name records and causes, never answer values.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be used right now: an I/O error, a directory that cannot be created or
    /// written, a failed flush. The write it interrupted may or may not have been kept.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Another process holds the store's lock (sled allows one process per directory).
    #[error("store at {path} is locked by another profilegate process")]
    Locked { path: String },
    /// A stored record cannot be read back. Nothing was overwritten.
    #[error("corrupt record ({what}): {cause}")]
    Corrupt { what: String, cause: String },
    /// The configured backend, or a feature of it, does not exist in this version.
    #[error("not supported: {0}")]
    NotSupported(String),
    /// A value the store refuses to keep because it could not be read back as written
    /// (for example a number that is not finite).
    #[error("invalid value: {0}")]
    Invalid(String),
}
