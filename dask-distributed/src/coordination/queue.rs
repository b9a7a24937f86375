//! [`Queue`]: a named FIFO queue of values held on the scheduler.

use std::any::Any;
use std::time::Duration;

use dask_core::Value;

use super::{
    checked_name, encode, encode_future, millis, unexpected, CoordinationTarget, Coordinator,
};
use crate::scheduler::coordination::{CoordReply, CoordRequest};
use crate::{Error, Future, Result};

/// A named queue shared across the cluster, like `distributed.Queue`: every
/// item put is got exactly once, in put order. Bounded queues make `put`
/// wait for room. Items are encoded with their codec, or are futures
/// ([`Queue::put_future`]): the scheduler keeps a future's value while the
/// queue holds it, and the client that gets it holds it from then on.
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
        let queue = Queue::handle(target, name.into(), maxsize)?;
        let (request, what) = queue.register();
        queue.coord.request(request, None, &|| what.clone())?;
        Ok(queue)
    }

    /// [`Queue::new`] for async code.
    pub async fn new_async<T: CoordinationTarget + ?Sized>(
        target: &T,
        name: impl Into<String>,
        maxsize: Option<usize>,
    ) -> Result<Queue> {
        let queue = Queue::handle(target, name.into(), maxsize)?;
        let (request, what) = queue.register();
        queue.coord.request_async(request, None, what, None).await?;
        Ok(queue)
    }

    fn handle<T: CoordinationTarget + ?Sized>(
        target: &T,
        name: String,
        maxsize: Option<usize>,
    ) -> Result<Queue> {
        let name = checked_name("queue", name)?;
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
        Ok(Queue {
            coord: target.coordinator()?,
            name,
            maxsize,
        })
    }

    fn register(&self) -> (CoordRequest, String) {
        let request = CoordRequest::QueueRegister {
            name: self.name.clone(),
            maxsize: self.maxsize,
        };
        (request, format!("declaring queue {:?}", self.name))
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
        self.put_encoded(encode(&value)?, timeout)
    }

    /// Appends a future (its key, not its value), waiting up to `timeout`
    /// for room. The scheduler keeps the future's value while the queue
    /// holds it, even if every client drops its own future; whoever gets
    /// it ([`Queue::get_future`]) holds it from then on.
    pub fn put_future<T>(&self, future: &Future<T>, timeout: Duration) -> Result<()> {
        self.put_encoded(encode_future(future)?, timeout)
    }

    fn put_request(&self, value: super::Encoded, timeout: Duration) -> (CoordRequest, String) {
        let request = CoordRequest::QueuePut {
            name: self.name.clone(),
            maxsize: self.maxsize,
            value,
            timeout_ms: millis(timeout),
        };
        (request, format!("putting into full queue {:?}", self.name))
    }

    fn put_encoded(&self, value: super::Encoded, timeout: Duration) -> Result<()> {
        let (request, what) = self.put_request(value, timeout);
        done(
            self.coord
                .request(request, Some(timeout), &|| what.clone())?,
        )
    }

    async fn put_encoded_async(&self, value: super::Encoded, timeout: Duration) -> Result<()> {
        let (request, what) = self.put_request(value, timeout);
        done(
            self.coord
                .request_async(request, Some(timeout), what, None)
                .await?,
        )
    }

    /// [`Queue::put`] for async code.
    pub async fn put_async<T: Any + Send + Sync>(&self, value: T, timeout: Duration) -> Result<()> {
        self.put_encoded_async(encode(&Value::new(value))?, timeout)
            .await
    }

    /// [`Queue::put_future`] for async code.
    pub async fn put_future_async<T>(&self, future: &Future<T>, timeout: Duration) -> Result<()> {
        self.put_encoded_async(encode_future(future)?, timeout)
            .await
    }

    fn get_request(&self, timeout: Duration) -> (CoordRequest, String) {
        let request = CoordRequest::QueueGet {
            name: self.name.clone(),
            timeout_ms: millis(timeout),
        };
        (request, format!("getting from empty queue {:?}", self.name))
    }

    fn what(&self) -> String {
        format!("queue {:?}'s item", self.name)
    }

    /// Takes the oldest item as a `T`, waiting up to `timeout` while the
    /// queue is empty.
    ///
    /// Errors: [`Error::Timeout`] if it stayed empty; a type mismatch (in
    /// [`Error::Core`]) if the item is not a `T`, [`Error::Coordination`]
    /// if it is a future (the item is consumed either way).
    pub fn get<T: Any + Send + Sync + Clone>(&self, timeout: Duration) -> Result<T> {
        Ok(self.get_value(timeout)?.take::<T>()?)
    }

    /// [`Queue::get`] as a [`Value`].
    pub fn get_value(&self, timeout: Duration) -> Result<Value> {
        let (request, what) = self.get_request(timeout);
        let reply = self
            .coord
            .request(request, Some(timeout), &|| what.clone())?;
        self.coord.value(reply, &self.what())
    }

    /// [`Queue::get`] for async code. An item that arrives after the caller
    /// stopped waiting (dropped this future) is lost, as in Dask.
    pub async fn get_async<T: Any + Send + Sync + Clone>(&self, timeout: Duration) -> Result<T> {
        let (request, what) = self.get_request(timeout);
        let reply = self
            .coord
            .request_async(request, Some(timeout), what, None)
            .await?;
        Ok(self.coord.value(reply, &self.what())?.take::<T>()?)
    }

    /// Takes the oldest item, a future put with [`Queue::put_future`],
    /// waiting up to `timeout`: a future of this client, which holds the
    /// value from now on (gather it, pass it to tasks).
    ///
    /// Errors: [`Error::Timeout`]; [`Error::Coordination`] if the item is a
    /// plain value or a future of another type (the item is consumed).
    pub fn get_future<T>(&self, timeout: Duration) -> Result<Future<T>> {
        let (request, what) = self.get_request(timeout);
        let reply = self
            .coord
            .request(request, Some(timeout), &|| what.clone())?;
        self.coord.future(reply, &self.what())
    }

    /// [`Queue::get_future`] for async code.
    pub async fn get_future_async<T>(&self, timeout: Duration) -> Result<Future<T>> {
        let (request, what) = self.get_request(timeout);
        let reply = self
            .coord
            .request_async(request, Some(timeout), what, None)
            .await?;
        self.coord.future(reply, &self.what())
    }

    fn size_request(&self) -> (CoordRequest, String) {
        let request = CoordRequest::QueueSize {
            name: self.name.clone(),
        };
        (request, format!("asking about queue {:?}", self.name))
    }

    /// The number of items in the queue now.
    pub fn qsize(&self) -> Result<usize> {
        let (request, what) = self.size_request();
        count(self.coord.request(request, None, &|| what.clone())?)
    }

    /// [`Queue::qsize`] for async code.
    pub async fn qsize_async(&self) -> Result<usize> {
        let (request, what) = self.size_request();
        count(self.coord.request_async(request, None, what, None).await?)
    }
}

fn done(reply: CoordReply) -> Result<()> {
    match reply {
        CoordReply::Done => Ok(()),
        other => Err(unexpected(other)),
    }
}

fn count(reply: CoordReply) -> Result<usize> {
    match reply {
        CoordReply::Count(n) => Ok(n as usize),
        other => Err(unexpected(other)),
    }
}
