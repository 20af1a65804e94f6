//! The open database file, reopened by itself after an I/O error.
//!
//! When a write fails on the disk (full, or gone for a moment), redb refuses every later
//! operation on that `Database` ("Previous I/O error occurred. Please close and re-open the
//! database."): left alone, the store would answer 503 until someone restarted the process, and
//! a compromised key could not be revoked meanwhile. So the handle that failed is dropped, and
//! the next operation opens the file again (checking its integrity, as at start), as soon as
//! the operations still holding the old handle have finished and the disk lets it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use redb::Database;

use crate::store::{StoreError, StoreResult};

pub(super) struct Handle {
    path: PathBuf,
    /// `None` between an I/O failure and the reopening. Held only to clone or replace the
    /// `Arc`, and while opening (blocking work, on the blocking pool like every operation).
    current: Mutex<Option<Arc<Database>>>,
    /// Whether the last write committed; false from a failed write until one succeeds, which
    /// is what `/readyz` reports as read-only.
    writes_ok: AtomicBool,
}

impl Handle {
    pub(super) fn new(path: &Path, db: Database) -> Handle {
        Handle {
            path: path.to_path_buf(),
            current: Mutex::new(Some(Arc::new(db))),
            writes_ok: AtomicBool::new(true),
        }
    }

    /// The database, opened again first if an I/O error closed it. Blocking.
    pub(super) fn get(&self) -> StoreResult<Arc<Database>> {
        let mut current = self
            .current
            .lock()
            .map_err(|_| StoreError::Unavailable("store handle poisoned".into()))?;
        if let Some(db) = current.as_ref() {
            return Ok(db.clone());
        }
        // Fails (and is tried again by the next operation) while an operation still holds the
        // old handle, or while the disk refuses the integrity check's writes.
        let db = Arc::new(super::open_database(&self.path)?);
        tracing::info!(path = %self.path.display(), "store reopened after an I/O error");
        *current = Some(db.clone());
        Ok(db)
    }

    /// Drops `db`, on which redb reported an I/O error, unless it was already replaced.
    pub(super) fn discard(&self, db: &Arc<Database>) {
        if let Ok(mut current) = self.current.lock()
            && current.as_ref().is_some_and(|c| Arc::ptr_eq(c, db))
        {
            tracing::warn!(path = %self.path.display(), "store I/O failed; reopening it");
            *current = None;
        }
    }

    pub(super) fn record_write(&self, committed: bool) {
        self.writes_ok.store(committed, Ordering::Relaxed);
    }

    pub(super) fn writes_ok(&self) -> bool {
        self.writes_ok.load(Ordering::Relaxed)
    }
}
