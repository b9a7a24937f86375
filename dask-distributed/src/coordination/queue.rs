//! [`Queue`]: a named FIFO queue of values held on the scheduler.

use std::any::Any;
use std::time::Duration;

use dask_core::Value;

use super::{checked_name, decode, encode, millis, unexpected, CoordinationTarget, Coordinator};
use crate::scheduler::coordination::{CoordReply, CoordRequest};
use crate::{Error, Result};

/// A named queue shared across the cluster, like `distributed.Queue`: every
/// item put is got exactly once, in put order. Bounded queues make `put`
/// wait for room. Items are encoded with their codec.
#[derive(Debug)]
pub struct Queue {
    coord: Coordinator,
    name: String,
    /// 0: unbounded.
    maxsize: u64,
}

impl Queue {
    /// A handle on queue `name`, holding at most `maxsize` items (`None`:
    /// unbounded).
    ///
    /// Errors: [`Error::InvalidConfig`] for an empty name or `Some(0)`;
    /// [`Error::Coordination`] if the queue exists with another bound.
    pub fn new<T: CoordinationTarget + ?Sized>(
        target: &T,
        name: impl Into<String>,
        maxsize: Option<usize>,
    ) -> Result<Queue> {
        let name = checked_name("queue", name.into())?;
        let maxsize = match maxsize {
            None => 0,
            Some(0) => {
                return Err(Error::InvalidConfig {
                    message: format!(
                        "queue {name:?} with maxsize 0 could never hold an item: give at least 1, \
                         or None for unbounded"
                    ),
                })
            }
            Some(n) => n as u64,
        };
        let queue = Queue {
            coord: target.coordinator()?,
            name,
            maxsize,
        };
        let request = CoordRequest::QueueRegister {
            name: queue.name.clone(),
            maxsize,
        };
        queue.coord.request(request, None, &|| {
            format!("declaring queue {:?}", queue.name)
        })?;
        Ok(queue)
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Appends `value`, waiting up to `timeout` for room in a full queue.
    ///
    /// Errors: `dask_core::Error::NoCodec` (in [`Error::Core`]) if the
    /// type has no codec; [`Error::Timeout`] if the queue stayed full.
    pub fn put<T: Any + Send + Sync>(&self, value: T, timeout: Duration) -> Result<()> {
        self.put_value(Value::new(value), timeout)
    }

    /// [`Queue::put`] for a [`Value`].
    pub fn put_value(&self, value: Value, timeout: Duration) -> Result<()> {
        let request = CoordRequest::QueuePut {
            name: self.name.clone(),
            maxsize: self.maxsize,
            value: encode(&value)?,
            timeout_ms: millis(timeout),
        };
        match self.coord.request(request, Some(timeout), &|| {
            format!("putting into full queue {:?}", self.name)
        })? {
            CoordReply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Takes the oldest item as a `T`, waiting up to `timeout` while the
    /// queue is empty.
    ///
    /// Errors: [`Error::Timeout`] if it stayed empty; a type mismatch (in
    /// [`Error::Core`]) if the item is not a `T` (the item is consumed).
    pub fn get<T: Any + Send + Sync + Clone>(&self, timeout: Duration) -> Result<T> {
        Ok(self.get_value(timeout)?.take::<T>()?)
    }

    /// [`Queue::get`] as a [`Value`].
    pub fn get_value(&self, timeout: Duration) -> Result<Value> {
        let request = CoordRequest::QueueGet {
            name: self.name.clone(),
            timeout_ms: millis(timeout),
        };
        decode(self.coord.request(request, Some(timeout), &|| {
            format!("getting from empty queue {:?}", self.name)
        })?)
    }

    /// The number of items in the queue now.
    pub fn qsize(&self) -> Result<usize> {
        let request = CoordRequest::QueueSize {
            name: self.name.clone(),
        };
        match self.coord.request(request, None, &|| {
            format!("asking about queue {:?}", self.name)
        })? {
            CoordReply::Count(n) => Ok(n as usize),
            other => Err(unexpected(other)),
        }
    }
}
