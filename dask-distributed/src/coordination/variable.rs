//! [`Variable`]: a named value held on the scheduler.

use std::any::Any;
use std::time::Duration;

use dask_core::Value;

use super::{checked_name, encode, encode_future, unexpected, CoordinationTarget, Coordinator};
use crate::scheduler::coordination::{CoordReply, CoordRequest, Encoded};
use crate::{Future, Result};

/// A named variable shared across the cluster, like `distributed.Variable`.
/// Values are encoded with their codec, or are futures
/// ([`Variable::set_future`]): the scheduler keeps a future's value while
/// the variable holds it (until it is set again or deleted), and each client
/// that gets it holds it too.
#[derive(Debug)]
pub struct Variable {
    coord: Coordinator,
    name: String,
}

impl Variable {
    /// A handle on variable `name`.
    ///
    /// Errors: [`crate::Error::InvalidConfig`] for an empty name.
    pub fn new<T: CoordinationTarget + ?Sized>(
        target: &T,
        name: impl Into<String>,
    ) -> Result<Variable> {
        Ok(Variable {
            coord: target.coordinator()?,
            name: checked_name("variable", name.into())?,
        })
    }

    /// The variable's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sets the value.
    ///
    /// Errors: `dask_core::Error::NoCodec` (in [`crate::Error::Core`]) if the
    /// type has no codec.
    pub fn set<T: Any + Send + Sync>(&self, value: T) -> Result<()> {
        self.set_value(Value::new(value))
    }

    /// [`Variable::set`] for a [`Value`].
    pub fn set_value(&self, value: Value) -> Result<()> {
        self.set_encoded(encode(&value)?)
    }

    /// Sets the variable to a future (its key, not its value). The
    /// scheduler keeps the future's value while the variable holds it, even
    /// if every client drops its own future.
    pub fn set_future<T>(&self, future: &Future<T>) -> Result<()> {
        self.set_encoded(encode_future(future)?)
    }

    /// [`Variable::set`] for async code.
    pub async fn set_async<T: Any + Send + Sync>(&self, value: T) -> Result<()> {
        self.set_encoded_async(encode(&Value::new(value))?).await
    }

    /// [`Variable::set_future`] for async code.
    pub async fn set_future_async<T>(&self, future: &Future<T>) -> Result<()> {
        self.set_encoded_async(encode_future(future)?).await
    }

    fn set_request(&self, value: Encoded) -> (CoordRequest, String) {
        let request = CoordRequest::VariableSet {
            name: self.name.clone(),
            value,
        };
        (request, format!("setting variable {:?}", self.name))
    }

    fn set_encoded(&self, value: Encoded) -> Result<()> {
        let (request, what) = self.set_request(value);
        done(self.coord.request(request, None, &|| what.clone())?)
    }

    async fn set_encoded_async(&self, value: Encoded) -> Result<()> {
        let (request, what) = self.set_request(value);
        done(self.coord.request_async(request, None, what, None).await?)
    }

    fn get_request(&self, timeout: Duration) -> (CoordRequest, String) {
        let request = CoordRequest::VariableGet {
            name: self.name.clone(),
            timeout_ms: super::millis(timeout),
        };
        (
            request,
            format!("waiting for variable {:?} to be set", self.name),
        )
    }

    fn what(&self) -> String {
        format!("variable {:?}", self.name)
    }

    /// The value as a `T`, waiting up to `timeout` while it is unset.
    ///
    /// Errors: [`crate::Error::Timeout`] if it stayed unset; a type mismatch
    /// (in [`crate::Error::Core`]) if it is not a `T`;
    /// [`crate::Error::Coordination`] if it holds a future.
    pub fn get<T: Any + Send + Sync + Clone>(&self, timeout: Duration) -> Result<T> {
        Ok(self.get_value(timeout)?.take::<T>()?)
    }

    /// [`Variable::get`] as a [`Value`].
    pub fn get_value(&self, timeout: Duration) -> Result<Value> {
        let (request, what) = self.get_request(timeout);
        let reply = self
            .coord
            .request(request, Some(timeout), &|| what.clone())?;
        self.coord.value(reply, &self.what())
    }

    /// [`Variable::get`] for async code.
    pub async fn get_async<T: Any + Send + Sync + Clone>(&self, timeout: Duration) -> Result<T> {
        let (request, what) = self.get_request(timeout);
        let reply = self
            .coord
            .request_async(request, Some(timeout), what, None)
            .await?;
        Ok(self.coord.value(reply, &self.what())?.take::<T>()?)
    }

    /// The future the variable holds ([`Variable::set_future`]), waiting
    /// up to `timeout` while it is unset: a future of this client, which
    /// holds the value too from now on.
    ///
    /// Errors: [`crate::Error::Timeout`]; [`crate::Error::Coordination`] if
    /// it holds a plain value or a future of another type.
    pub fn get_future<T>(&self, timeout: Duration) -> Result<Future<T>> {
        let (request, what) = self.get_request(timeout);
        let reply = self
            .coord
            .request(request, Some(timeout), &|| what.clone())?;
        self.coord.future(reply, &self.what())
    }

    /// [`Variable::get_future`] for async code.
    pub async fn get_future_async<T>(&self, timeout: Duration) -> Result<Future<T>> {
        let (request, what) = self.get_request(timeout);
        let reply = self
            .coord
            .request_async(request, Some(timeout), what, None)
            .await?;
        self.coord.future(reply, &self.what())
    }

    fn delete_request(&self) -> (CoordRequest, String) {
        let request = CoordRequest::VariableDelete {
            name: self.name.clone(),
        };
        (request, format!("deleting variable {:?}", self.name))
    }

    /// Unsets the variable (a future it held is let go).
    pub fn delete(&self) -> Result<()> {
        let (request, what) = self.delete_request();
        done(self.coord.request(request, None, &|| what.clone())?)
    }

    /// [`Variable::delete`] for async code.
    pub async fn delete_async(&self) -> Result<()> {
        let (request, what) = self.delete_request();
        done(self.coord.request_async(request, None, what, None).await?)
    }
}

fn done(reply: CoordReply) -> Result<()> {
    match reply {
        CoordReply::Done => Ok(()),
        other => Err(unexpected(other)),
    }
}
