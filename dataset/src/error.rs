//! The crate's error type: every failure names the file, shard or config field involved.

use std::path::PathBuf;

use crate::config::ConfigError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    // Not `#[source]`: the message already ends with the OS error, and a chained report
    // ({:#}) would say it twice.
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "shard {file} does not match the manifest: sha256 is {actual}, manifest says {expected}"
    )]
    HashMismatch {
        file: String,
        expected: String,
        actual: String,
    },
    #[error(
        "{} holds a dataset made with a different config ({what}); pass --force to replace it",
        dir.display()
    )]
    ConfigMismatch { dir: PathBuf, what: String },
    #[error("{}: {message}", path.display())]
    Format { path: PathBuf, message: String },
    /// The output folder is locked by another process (the message names it and the pid).
    #[error("{0}")]
    Busy(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error: source,
        }
    }

    pub(crate) fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            message: message.into(),
        }
    }
}
