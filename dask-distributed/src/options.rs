//! [`SubmitOptions`]: how [`Client::submit_with`](crate::Client::submit_with)
//! and [`Client::map_with`](crate::Client::map_with) name, order, retry and
//! place tasks.
//!
//! Keys follow Dask's `pure=True` default: a registered op called on
//! arguments that all have a codec (or are futures) gets a key made from the
//! op's tag and the arguments' encoded bytes, so submitting the same call
//! twice gives the same key and the work runs once. A closure (no tag) or an
//! argument without a codec cannot be named from its content: such a call
//! falls back to a unique key, as `pure(false)` always does.
//!
//! Naming by content encodes every literal argument once at submit: for a
//! large value, [`scatter`](crate::Client::scatter) it first (a future is
//! named by its key) or submit with `pure(false)`.

use dask_core::codec::encode_value;
use dask_core::delayed::key_prefix;
use dask_core::tokenize::{unique_token, Tokenizer};
use dask_core::{Arg, Key, Op};

use crate::client::TaskOptions;

/// Options of a submission; [`SubmitOptions::default`] is what
/// [`Client::submit`](crate::Client::submit) uses.
#[derive(Debug, Clone)]
pub struct SubmitOptions {
    pub(crate) pure: bool,
    pub(crate) priority: i64,
    pub(crate) retries: u32,
    pub(crate) workers: Option<Vec<String>>,
    pub(crate) key: Option<Key>,
}

impl Default for SubmitOptions {
    fn default() -> Self {
        SubmitOptions {
            pure: true,
            priority: 0,
            retries: 0,
            workers: None,
            key: None,
        }
    }
}

impl SubmitOptions {
    /// The defaults: pure, priority 0, no retries, any worker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether equal calls share a key and run once (default `true`; see the
    /// module docs for when a call cannot be named from its content).
    pub fn pure(mut self, pure: bool) -> Self {
        self.pure = pure;
        self
    }

    /// Among ready tasks waiting for a worker, higher priorities are sent
    /// first (default 0; negative values run later).
    pub fn priority(mut self, priority: i64) -> Self {
        self.priority = priority;
        self
    }

    /// A task that fails (its function returns an error or panics) is rerun
    /// up to `n` more times, on any allowed worker, before its future errs.
    pub fn retries(mut self, n: u32) -> Self {
        self.retries = n;
        self
    }

    /// Only the workers at these data addresses (see
    /// [`Client::workers`](crate::Client::workers)) may run the task. An
    /// address no connected worker has is refused at submit; if every named
    /// worker leaves later, the task waits in no-worker state.
    pub fn workers<S: Into<String>>(mut self, addrs: impl IntoIterator<Item = S>) -> Self {
        self.workers = Some(addrs.into_iter().map(Into::into).collect());
        self
    }

    /// Uses `key` instead of a computed one (one task only: refused by `map`).
    pub fn key(mut self, key: Key) -> Self {
        self.key = Some(key);
        self
    }

    pub(crate) fn task_options(&self) -> TaskOptions {
        TaskOptions {
            priority: self.priority,
            retries: self.retries,
            workers: self.workers.clone(),
        }
    }

    /// The key of a call of `op` on `args` under these options.
    pub(crate) fn key_for(&self, op: &dyn Op, args: &[Arg]) -> Key {
        if let Some(key) = &self.key {
            return key.clone();
        }
        let token = self
            .pure
            .then(|| content_token(op, args))
            .flatten()
            .unwrap_or_else(unique_token);
        Key::named(format!("{}-{}", key_prefix(op.name()), token))
    }
}

/// A token from the op's tag and parameters and the arguments' bytes; `None`
/// when the op is not registered or an argument has no codec.
pub(crate) fn content_token(op: &dyn Op, args: &[Arg]) -> Option<String> {
    let mut t = Tokenizer::default();
    t.bytes(op.tag()?.as_bytes()).bytes(&op.params());
    for arg in args {
        match arg {
            Arg::Key(k) => {
                t.bytes(b"key").bytes(k.to_string().as_bytes());
            }
            Arg::Value(v) => {
                let (tag, bytes) = encode_value(v).ok()?;
                t.bytes(b"value").bytes(tag.as_bytes()).bytes(&bytes);
            }
            Arg::Task(_) | Arg::List(_) => return None,
        }
    }
    Some(t.finish())
}
