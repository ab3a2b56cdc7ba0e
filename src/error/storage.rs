//! The opaque cause of a storage failure: an engine's own error, its type kept private.

use std::fmt;

/// A storage engine's own error, kept as the cause of an [`enum@Error`](super::Error): print it, or walk its
/// [`source`](std::error::Error::source) chain; which engine's type it is stays private, so
/// that a second engine changes no public type.
pub struct StorageError(Box<dyn std::error::Error + Send + Sync + 'static>);

impl StorageError {
    pub(crate) fn new(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        StorageError(Box::new(e))
    }

    /// A failure the store found itself, described by `what`.
    pub(crate) fn message(what: String) -> Self {
        StorageError(what.into())
    }
}

impl fmt::Debug for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for StorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}
