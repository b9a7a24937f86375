//! [`Lock`]: a named mutual-exclusion lock held on the scheduler.

use std::time::Duration;

use super::{checked_name, millis, next_id, unexpected, CoordinationTarget, Coordinator};
use crate::scheduler::coordination::{CoordReply, CoordRequest};
use crate::Result;

/// A named lock shared across the cluster, like `distributed.Lock`.
///
/// Each handle is its own holder: two handles with the same name exclude
/// each other, even in one client. Not reentrant. Waiters are served in
/// arrival order. A held lock is released by [`Lock::release`], by dropping
/// a [`LockGuard`], or when the holder's connection to the scheduler ends;
/// dropping the handle itself does not release it.
#[derive(Debug)]
pub struct Lock {
    coord: Coordinator,
    name: String,
    holder: u64,
}

impl Lock {
    /// A handle on lock `name`.
    ///
    /// Errors: [`crate::Error::InvalidConfig`] for an empty name; connection
    /// errors for an address target.
    pub fn new<T: CoordinationTarget + ?Sized>(
        target: &T,
        name: impl Into<String>,
    ) -> Result<Lock> {
        Ok(Lock {
            coord: target.coordinator()?,
            name: checked_name("lock", name.into())?,
            holder: next_id(),
        })
    }

    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Acquires the lock, waiting up to `timeout`.
    ///
    /// Errors: [`crate::Error::Timeout`] if it is still held by another
    /// when the timeout passes; [`crate::Error::Coordination`] if this
    /// handle already holds it.
    pub fn acquire(&self, timeout: Duration) -> Result<()> {
        let request = CoordRequest::LockAcquire {
            name: self.name.clone(),
            holder: self.holder,
            timeout_ms: millis(timeout),
        };
        match self.coord.request(request, Some(timeout), &|| {
            format!("acquiring lock {:?}", self.name)
        }) {
            Ok(CoordReply::Done) => Ok(()),
            Ok(other) => Err(unexpected(other)),
            Err(e) => {
                if matches!(e, crate::Error::Timeout { .. }) {
                    // In case the scheduler granted it after we gave up.
                    self.coord.send(CoordRequest::LockRelease {
                        name: self.name.clone(),
                        holder: self.holder,
                    });
                }
                Err(e)
            }
        }
    }

    /// [`Lock::acquire`] for async code (the wait runs on the client's
    /// runtime). If the caller stops waiting and the lock is granted
    /// later, it is released at once.
    pub async fn acquire_async(&self, timeout: Duration) -> Result<()> {
        let request = CoordRequest::LockAcquire {
            name: self.name.clone(),
            holder: self.holder,
            timeout_ms: millis(timeout),
        };
        let what = format!("acquiring lock {:?}", self.name);
        let undo = self.release_request();
        match self
            .coord
            .request_async(request, Some(timeout), what, Some(undo))
            .await
        {
            Ok(CoordReply::Done) => Ok(()),
            Ok(other) => Err(unexpected(other)),
            Err(e) => {
                if matches!(e, crate::Error::Timeout { .. }) {
                    self.coord.send(self.release_request());
                }
                Err(e)
            }
        }
    }

    /// [`Lock::lock`] for async code.
    pub async fn lock_async(&self, timeout: Duration) -> Result<LockGuard<'_>> {
        self.acquire_async(timeout).await?;
        Ok(LockGuard { lock: self })
    }

    /// [`Lock::release`] for async code.
    pub async fn release_async(&self) -> Result<()> {
        let what = format!("releasing lock {:?}", self.name);
        match self
            .coord
            .request_async(self.release_request(), None, what, None)
            .await?
        {
            CoordReply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    fn release_request(&self) -> CoordRequest {
        CoordRequest::LockRelease {
            name: self.name.clone(),
            holder: self.holder,
        }
    }

    /// Acquires the lock if it is free now; `false` if it is held.
    pub fn try_acquire(&self) -> Result<bool> {
        match self.acquire(Duration::ZERO) {
            Ok(()) => Ok(true),
            Err(crate::Error::Timeout { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Acquires the lock (waiting up to `timeout`) and returns a guard that
    /// releases it when dropped.
    pub fn lock(&self, timeout: Duration) -> Result<LockGuard<'_>> {
        self.acquire(timeout)?;
        Ok(LockGuard { lock: self })
    }

    /// Releases the lock.
    ///
    /// Errors: [`crate::Error::Coordination`] if this handle does not hold it.
    pub fn release(&self) -> Result<()> {
        let request = CoordRequest::LockRelease {
            name: self.name.clone(),
            holder: self.holder,
        };
        match self
            .coord
            .request(request, None, &|| format!("releasing lock {:?}", self.name))?
        {
            CoordReply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Whether anyone holds the lock now.
    pub fn locked(&self) -> Result<bool> {
        let request = CoordRequest::LockLocked {
            name: self.name.clone(),
        };
        match self.coord.request(request, None, &|| {
            format!("asking about lock {:?}", self.name)
        })? {
            CoordReply::Flag(b) => Ok(b),
            other => Err(unexpected(other)),
        }
    }
}

/// A held [`Lock`], released when dropped.
#[derive(Debug)]
pub struct LockGuard<'a> {
    lock: &'a Lock,
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        self.lock
            .coord
            .release_from_drop(CoordRequest::LockRelease {
                name: self.lock.name.clone(),
                holder: self.lock.holder,
            });
    }
}
