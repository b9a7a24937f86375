//! [`Pub`] and [`Sub`]: publish/subscribe on a named topic, routed through
//! the scheduler.

use std::any::Any;
use std::time::Duration;

use dask_core::Value;

use super::{checked_name, encode, millis, next_id, unexpected, CoordinationTarget, Coordinator};
use crate::scheduler::coordination::{CoordReply, CoordRequest};
use crate::Result;

/// A publisher on a topic, like `distributed.Pub`: every message goes to
/// every live subscriber of the topic, in the order this publisher put them.
///
/// Messages travel through the scheduler (not peer to peer between
/// workers); each [`Pub::put`] waits for the scheduler's acknowledgement.
#[derive(Debug)]
pub struct Pub {
    coord: Coordinator,
    topic: String,
}

impl Pub {
    /// A publisher on `topic`.
    ///
    /// Errors: [`crate::Error::InvalidConfig`] for an empty topic.
    pub fn new<T: CoordinationTarget + ?Sized>(
        target: &T,
        topic: impl Into<String>,
    ) -> Result<Pub> {
        Ok(Pub {
            coord: target.coordinator()?,
            topic: checked_name("topic", topic.into())?,
        })
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Publishes `value`; returns how many subscribers it reached (0: none
    /// was subscribed, and the message is dropped).
    ///
    /// Errors: `dask_core::Error::NoCodec` (in [`crate::Error::Core`]) if
    /// the type has no codec.
    pub fn put<T: Any + Send + Sync>(&self, value: T) -> Result<usize> {
        self.put_value(Value::new(value))
    }

    /// [`Pub::put`] for a [`Value`].
    pub fn put_value(&self, value: Value) -> Result<usize> {
        let (request, what) = self.publish(&value)?;
        count(self.coord.request(request, None, &|| what.clone())?)
    }

    /// [`Pub::put`] for async code.
    pub async fn put_async<T: Any + Send + Sync>(&self, value: T) -> Result<usize> {
        let (request, what) = self.publish(&Value::new(value))?;
        count(self.coord.request_async(request, None, what, None).await?)
    }

    fn publish(&self, value: &Value) -> Result<(CoordRequest, String)> {
        let request = CoordRequest::Publish {
            topic: self.topic.clone(),
            value: encode(value)?,
        };
        Ok((request, format!("publishing to topic {:?}", self.topic)))
    }
}

fn count(reply: CoordReply) -> Result<usize> {
    match reply {
        CoordReply::Count(n) => Ok(n as usize),
        other => Err(unexpected(other)),
    }
}

/// A subscriber to a topic, like `distributed.Sub`: receives every message
/// published after [`Sub::new`] returned, in order per publisher. Unread
/// messages wait on the scheduler (without bound) until received; dropping
/// the subscriber, or its connection ending, unsubscribes.
#[derive(Debug)]
pub struct Sub {
    coord: Coordinator,
    topic: String,
    id: u64,
}

impl Sub {
    /// Subscribes to `topic`.
    ///
    /// Errors: [`crate::Error::InvalidConfig`] for an empty topic.
    pub fn new<T: CoordinationTarget + ?Sized>(
        target: &T,
        topic: impl Into<String>,
    ) -> Result<Sub> {
        let sub = Sub {
            coord: target.coordinator()?,
            topic: checked_name("topic", topic.into())?,
            id: next_id(),
        };
        let (request, what) = sub.subscribe();
        sub.coord.request(request, None, &|| what.clone())?;
        Ok(sub)
    }

    /// [`Sub::new`] for async code.
    pub async fn new_async<T: CoordinationTarget + ?Sized>(
        target: &T,
        topic: impl Into<String>,
    ) -> Result<Sub> {
        let sub = Sub {
            coord: target.coordinator()?,
            topic: checked_name("topic", topic.into())?,
            id: next_id(),
        };
        let (request, what) = sub.subscribe();
        sub.coord.request_async(request, None, what, None).await?;
        Ok(sub)
    }

    fn subscribe(&self) -> (CoordRequest, String) {
        let request = CoordRequest::Subscribe {
            topic: self.topic.clone(),
            sub: self.id,
        };
        (request, format!("subscribing to topic {:?}", self.topic))
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The next message as a `T`, waiting up to `timeout` for one.
    ///
    /// Errors: [`crate::Error::Timeout`] if none came; a type mismatch (in
    /// [`crate::Error::Core`]) if it is not a `T` (the message is consumed);
    /// [`crate::Error::Coordination`] if another thread is already waiting
    /// on this subscriber.
    pub fn get<T: Any + Send + Sync + Clone>(&self, timeout: Duration) -> Result<T> {
        Ok(self.get_value(timeout)?.take::<T>()?)
    }

    /// [`Sub::get`] as a [`Value`].
    pub fn get_value(&self, timeout: Duration) -> Result<Value> {
        let (request, what) = self.receive(timeout);
        let reply = self
            .coord
            .request(request, Some(timeout), &|| what.clone())?;
        self.coord.value(reply, &self.what())
    }

    /// The next message, for async code: [`Sub::get`] without blocking
    /// (the wait runs on the client's runtime). A message that arrives
    /// after the caller stopped waiting is lost.
    pub async fn get_async<T: Any + Send + Sync + Clone>(&self, timeout: Duration) -> Result<T> {
        let (request, what) = self.receive(timeout);
        let reply = self
            .coord
            .request_async(request, Some(timeout), what, None)
            .await?;
        Ok(self.coord.value(reply, &self.what())?.take::<T>()?)
    }

    fn receive(&self, timeout: Duration) -> (CoordRequest, String) {
        let request = CoordRequest::Receive {
            topic: self.topic.clone(),
            sub: self.id,
            timeout_ms: millis(timeout),
        };
        (
            request,
            format!("waiting for a message on topic {:?}", self.topic),
        )
    }

    fn what(&self) -> String {
        format!("the message on topic {:?}", self.topic)
    }
}

impl Drop for Sub {
    fn drop(&mut self) {
        self.coord.send(CoordRequest::Unsubscribe {
            topic: self.topic.clone(),
            sub: self.id,
        });
    }
}
