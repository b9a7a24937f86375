//! [`Event`]: a named flag held on the scheduler that tasks can wait on.

use std::time::Duration;

use super::{checked_name, millis, unexpected, CoordinationTarget, Coordinator};
use crate::scheduler::coordination::{CoordReply, CoordRequest};
use crate::Result;

/// A named event shared across the cluster, like `distributed.Event`:
/// [`Event::set`] wakes every waiter; [`Event::clear`] makes later waits
/// wait again.
#[derive(Debug)]
pub struct Event {
    coord: Coordinator,
    name: String,
}

impl Event {
    /// A handle on event `name` (initially clear).
    ///
    /// Errors: [`crate::Error::InvalidConfig`] for an empty name.
    pub fn new<T: CoordinationTarget + ?Sized>(
        target: &T,
        name: impl Into<String>,
    ) -> Result<Event> {
        Ok(Event {
            coord: target.coordinator()?,
            name: checked_name("event", name.into())?,
        })
    }

    /// The event's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn simple(&self, request: CoordRequest, what: &str) -> Result<CoordReply> {
        self.coord
            .request(request, None, &|| format!("{what} event {:?}", self.name))
    }

    async fn simple_async(&self, request: CoordRequest, what: &str) -> Result<CoordReply> {
        let what = format!("{what} event {:?}", self.name);
        self.coord.request_async(request, None, what, None).await
    }

    /// [`Event::set`] for async code.
    pub async fn set_async(&self) -> Result<()> {
        let name = self.name.clone();
        match self
            .simple_async(CoordRequest::EventSet { name }, "setting")
            .await?
        {
            CoordReply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// [`Event::clear`] for async code.
    pub async fn clear_async(&self) -> Result<()> {
        let name = self.name.clone();
        match self
            .simple_async(CoordRequest::EventClear { name }, "clearing")
            .await?
        {
            CoordReply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// [`Event::is_set`] for async code.
    pub async fn is_set_async(&self) -> Result<bool> {
        let name = self.name.clone();
        match self
            .simple_async(CoordRequest::EventIsSet { name }, "asking about")
            .await?
        {
            CoordReply::Flag(b) => Ok(b),
            other => Err(unexpected(other)),
        }
    }

    /// [`Event::wait`] for async code (the wait runs on the client's runtime).
    pub async fn wait_async(&self, timeout: Duration) -> Result<()> {
        let request = CoordRequest::EventWait {
            name: self.name.clone(),
            timeout_ms: millis(timeout),
        };
        let what = format!("waiting for event {:?}", self.name);
        match self
            .coord
            .request_async(request, Some(timeout), what, None)
            .await?
        {
            CoordReply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Sets the event, waking every waiter.
    pub fn set(&self) -> Result<()> {
        let name = self.name.clone();
        match self.simple(CoordRequest::EventSet { name }, "setting")? {
            CoordReply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Clears the event.
    pub fn clear(&self) -> Result<()> {
        let name = self.name.clone();
        match self.simple(CoordRequest::EventClear { name }, "clearing")? {
            CoordReply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Whether the event is set now.
    pub fn is_set(&self) -> Result<bool> {
        let name = self.name.clone();
        match self.simple(CoordRequest::EventIsSet { name }, "asking about")? {
            CoordReply::Flag(b) => Ok(b),
            other => Err(unexpected(other)),
        }
    }

    /// Waits up to `timeout` for the event to be set.
    ///
    /// Errors: [`crate::Error::Timeout`] if it stayed clear.
    pub fn wait(&self, timeout: Duration) -> Result<()> {
        let request = CoordRequest::EventWait {
            name: self.name.clone(),
            timeout_ms: millis(timeout),
        };
        match self.coord.request(request, Some(timeout), &|| {
            format!("waiting for event {:?}", self.name)
        })? {
            CoordReply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }
}
