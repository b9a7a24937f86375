//! [`Semaphore`]: a named counting semaphore held on the scheduler.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use super::{checked_name, millis, next_id, unexpected, CoordinationTarget, Coordinator};
use crate::scheduler::coordination::{CoordReply, CoordRequest};
use crate::{Error, Result};

/// A named semaphore of `max_leases` leases shared across the cluster, like
/// `distributed.Semaphore`: at most `max_leases` acquisitions are held at
/// once, cluster-wide. Leases of a client whose connection ends are given
/// back. Waiters are served in arrival order.
#[derive(Debug)]
pub struct Semaphore {
    coord: Coordinator,
    name: String,
    max_leases: u32,
    /// Leases this handle holds, oldest first.
    leases: Mutex<Vec<u64>>,
}

impl Semaphore {
    /// A handle on semaphore `name` with `max_leases` leases.
    ///
    /// Errors: [`Error::InvalidConfig`] for an empty name or 0 leases;
    /// [`Error::Coordination`] if the semaphore exists with another
    /// `max_leases`.
    pub fn new<T: CoordinationTarget + ?Sized>(
        target: &T,
        name: impl Into<String>,
        max_leases: u32,
    ) -> Result<Semaphore> {
        let name = checked_name("semaphore", name.into())?;
        if max_leases == 0 {
            return Err(Error::InvalidConfig {
                message: format!(
                    "semaphore {name:?} with max_leases 0 could never be acquired: give at least 1"
                ),
            });
        }
        let sem = Semaphore {
            coord: target.coordinator()?,
            name,
            max_leases,
            leases: Mutex::new(Vec::new()),
        };
        sem.leases_taken()?; // declares it, refused on a max_leases conflict
        Ok(sem)
    }

    /// [`Semaphore::new`] for async code.
    pub async fn new_async<T: CoordinationTarget + ?Sized>(
        target: &T,
        name: impl Into<String>,
        max_leases: u32,
    ) -> Result<Semaphore> {
        let name = checked_name("semaphore", name.into())?;
        if max_leases == 0 {
            return Err(Error::InvalidConfig {
                message: format!(
                    "semaphore {name:?} with max_leases 0 could never be acquired: give at least 1"
                ),
            });
        }
        let sem = Semaphore {
            coord: target.coordinator()?,
            name,
            max_leases,
            leases: Mutex::new(Vec::new()),
        };
        let request = CoordRequest::SemaphoreRegister {
            name: sem.name.clone(),
            max_leases: sem.max_leases,
        };
        let what = format!("asking about semaphore {:?}", sem.name);
        sem.coord.request_async(request, None, what, None).await?;
        Ok(sem)
    }

    async fn take_lease_async(&self, timeout: Duration) -> Result<u64> {
        let lease = next_id();
        let request = CoordRequest::SemaphoreAcquire {
            name: self.name.clone(),
            max_leases: self.max_leases,
            lease,
            timeout_ms: millis(timeout),
        };
        let what = format!("acquiring a lease of semaphore {:?}", self.name);
        let undo = self.release_request(lease);
        match self
            .coord
            .request_async(request, Some(timeout), what, Some(undo))
            .await
        {
            Ok(CoordReply::Done) => Ok(lease),
            Ok(other) => Err(unexpected(other)),
            Err(e) => {
                if matches!(e, Error::Timeout { .. }) {
                    self.coord.send(self.release_request(lease));
                }
                Err(e)
            }
        }
    }

    /// [`Semaphore::acquire`] for async code (the wait runs on the
    /// client's runtime). If the caller stops waiting and the lease is
    /// granted later, it is given back at once.
    pub async fn acquire_async(&self, timeout: Duration) -> Result<()> {
        let lease = self.take_lease_async(timeout).await?;
        self.leases
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(lease);
        Ok(())
    }

    /// [`Semaphore::lease`] for async code.
    pub async fn lease_async(&self, timeout: Duration) -> Result<SemaphoreGuard<'_>> {
        let lease = self.take_lease_async(timeout).await?;
        Ok(SemaphoreGuard { sem: self, lease })
    }

    /// [`Semaphore::release`] for async code.
    pub async fn release_async(&self) -> Result<()> {
        let lease = self.oldest_lease()?;
        let what = format!("releasing a lease of semaphore {:?}", self.name);
        match self
            .coord
            .request_async(self.release_request(lease), None, what, None)
            .await?
        {
            CoordReply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    fn oldest_lease(&self) -> Result<u64> {
        let mut leases = self.leases.lock().unwrap_or_else(PoisonError::into_inner);
        if leases.is_empty() {
            return Err(Error::Coordination {
                message: format!(
                    "semaphore {:?}: this handle holds no lease to release; acquire before \
                     releasing",
                    self.name
                ),
            });
        }
        Ok(leases.remove(0))
    }

    /// The semaphore's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many leases the semaphore has.
    pub fn max_leases(&self) -> u32 {
        self.max_leases
    }

    fn take_lease(&self, timeout: Duration) -> Result<u64> {
        let lease = next_id();
        let request = CoordRequest::SemaphoreAcquire {
            name: self.name.clone(),
            max_leases: self.max_leases,
            lease,
            timeout_ms: millis(timeout),
        };
        match self.coord.request(request, Some(timeout), &|| {
            format!("acquiring a lease of semaphore {:?}", self.name)
        }) {
            Ok(CoordReply::Done) => Ok(lease),
            Ok(other) => Err(unexpected(other)),
            Err(e) => {
                if matches!(e, Error::Timeout { .. }) {
                    self.coord.send(self.release_request(lease));
                }
                Err(e)
            }
        }
    }

    fn release_request(&self, lease: u64) -> CoordRequest {
        CoordRequest::SemaphoreRelease {
            name: self.name.clone(),
            lease,
        }
    }

    /// Takes a lease, waiting up to `timeout` for one to free.
    ///
    /// Errors: [`Error::Timeout`] if none freed in time.
    pub fn acquire(&self, timeout: Duration) -> Result<()> {
        let lease = self.take_lease(timeout)?;
        self.leases
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(lease);
        Ok(())
    }

    /// Takes a lease (waiting up to `timeout`) and returns a guard that
    /// gives it back when dropped.
    pub fn lease(&self, timeout: Duration) -> Result<SemaphoreGuard<'_>> {
        let lease = self.take_lease(timeout)?;
        Ok(SemaphoreGuard { sem: self, lease })
    }

    /// Gives back the oldest lease this handle took with
    /// [`Semaphore::acquire`].
    ///
    /// Errors: [`Error::Coordination`] if this handle holds none.
    pub fn release(&self) -> Result<()> {
        let lease = self.oldest_lease()?;
        match self.coord.request(self.release_request(lease), None, &|| {
            format!("releasing a lease of semaphore {:?}", self.name)
        })? {
            CoordReply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// How many leases are taken now, cluster-wide.
    pub fn leases_taken(&self) -> Result<u64> {
        let request = CoordRequest::SemaphoreRegister {
            name: self.name.clone(),
            max_leases: self.max_leases,
        };
        match self.coord.request(request, None, &|| {
            format!("asking about semaphore {:?}", self.name)
        })? {
            CoordReply::Count(n) => Ok(n),
            other => Err(unexpected(other)),
        }
    }
}

/// A lease of a [`Semaphore`], given back when dropped.
#[derive(Debug)]
pub struct SemaphoreGuard<'a> {
    sem: &'a Semaphore,
    lease: u64,
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        let request = self.sem.release_request(self.lease);
        self.sem.coord.release_from_drop(request);
    }
}
