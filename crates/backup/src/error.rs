use std::path::PathBuf;

/// Errors of backup, verify, prune and restore.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] tsunagu_store::StoreError),
    #[error("restore failed: {0}")]
    Restore(#[from] tsunagu_interaction::InteractionError),
    #[error("{0}")]
    Key(String),
    /// The identity does not open this backup: the most common operator mistake, so the
    /// message says which public key the backup was made for.
    #[error("the identity does not match this backup (it was encrypted to {recipient})")]
    WrongKey { recipient: String },
    #[error("cannot decrypt {file}: {reason}")]
    Decrypt { file: String, reason: String },
    /// A file of the backup is missing, damaged or inconsistent.
    #[error("backup damaged: {0}")]
    Damaged(String),
    #[error("{0}")]
    Usage(String),
}

impl BackupError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BackupError {
        let path = path.into();
        move |source| BackupError::Io { path, source }
    }
}
