//! [`Variable`]: a named value held on the scheduler.

use std::any::Any;
use std::time::Duration;

use dask_core::Value;

use super::{checked_name, decode, encode, unexpected, CoordinationTarget, Coordinator};
use crate::scheduler::coordination::{CoordReply, CoordRequest};
use crate::Result;

/// A named variable shared across the cluster, like `distributed.Variable`.
/// Values are encoded with their codec.
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
        let request = CoordRequest::VariableSet {
            name: self.name.clone(),
            value: encode(&value)?,
        };
        match self.coord.request(request, None, &|| {
            format!("setting variable {:?}", self.name)
        })? {
            CoordReply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// The value as a `T`, waiting up to `timeout` while it is unset.
    ///
    /// Errors: [`crate::Error::Timeout`] if it stayed unset; a type mismatch
    /// (in [`crate::Error::Core`]) if it is not a `T`.
    pub fn get<T: Any + Send + Sync + Clone>(&self, timeout: Duration) -> Result<T> {
        Ok(self.get_value(timeout)?.take::<T>()?)
    }

    /// [`Variable::get`] as a [`Value`].
    pub fn get_value(&self, timeout: Duration) -> Result<Value> {
        let request = CoordRequest::VariableGet {
            name: self.name.clone(),
            timeout_ms: super::millis(timeout),
        };
        decode(self.coord.request(request, Some(timeout), &|| {
            format!("waiting for variable {:?} to be set", self.name)
        })?)
    }

    /// Unsets the variable.
    pub fn delete(&self) -> Result<()> {
        let request = CoordRequest::VariableDelete {
            name: self.name.clone(),
        };
        match self.coord.request(request, None, &|| {
            format!("deleting variable {:?}", self.name)
        })? {
            CoordReply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }
}
