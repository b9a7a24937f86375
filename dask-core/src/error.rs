//! The error type of dask-core, shared by every scheduler.

use crate::Key;

/// A boxed error with its cause chain, as returned by a failing op.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with dask-core's [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while building or computing a graph.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A task's op returned an error or panicked.
    #[error("task {key} (op `{op}`) failed: {message}")]
    TaskFailed {
        /// The key of the task that failed.
        key: Key,
        /// The name of the op that failed.
        op: String,
        /// The failure's message (the source's `Display`).
        message: String,
        /// The original error, with its cause chain.
        #[source]
        source: BoxError,
    },
    /// A task refers to a key that is not in the graph.
    #[error("task {key} depends on {missing}, which is not in the graph: add a task for {missing} or fix the reference")]
    MissingDependency {
        /// The task holding the dangling reference.
        key: Key,
        /// The key that has no task.
        missing: Key,
    },
    /// An output asked for is not in the graph.
    #[error("output {key} is not in the graph: ask only for keys the graph defines")]
    MissingOutput {
        /// The requested key.
        key: Key,
    },
    /// The graph has a cycle; the keys are listed along the cycle.
    #[error("the graph has a cycle: {}", format_cycle(.keys))]
    Cycle {
        /// The keys along the cycle, the first repeated at the end.
        keys: Vec<Key>,
    },
    /// A compute call asked for no output at all.
    #[error("nothing to compute: the call asked for zero outputs; pass at least one key")]
    NoOutputs,
    /// A value was downcast to a type it does not hold.
    #[error("wrong type: expected a value of type `{expected}`, found `{found}`")]
    WrongType {
        /// The type asked for.
        expected: &'static str,
        /// The type the value holds.
        found: &'static str,
    },
    /// A collection was handed a different number of values than it has keys.
    #[error("collection expected {expected} computed values, got {found} (bug in a scheduler or collection)")]
    WrongNumberOfValues {
        /// Number of keys of the collection.
        expected: usize,
        /// Number of values received.
        found: usize,
    },
    /// `compute()` found no scheduler to run on.
    #[error("no scheduler is available: {hint}")]
    NoScheduler {
        /// What to add or call to get one.
        hint: String,
    },
    /// No op is registered under this tag.
    #[error("no op is registered under tag `{tag}`: register it with `dask_core::register_op!` (functions) or `dask_core::register_op_type!` (op structs) in a crate the binary links")]
    UnknownOp {
        /// The tag looked up.
        tag: String,
    },
    /// Two ops were registered under the same tag.
    #[error("two ops are registered under tag `{tag}`: give one of them another name")]
    DuplicateOp {
        /// The duplicated tag.
        tag: String,
    },
    /// A value must leave the process but its type has no codec.
    #[error("values of type `{type_name}` cannot be sent to another process: register a codec with `dask_core::register_codec!({type_name})` (serde types) or a `CodecRegistration`")]
    NoCodec {
        /// The value's type.
        type_name: &'static str,
    },
    /// Encoded data names a codec this process does not have.
    #[error("no codec is registered under tag `{tag}`: link the crate that registers it (workers must run the same build as the client)")]
    UnknownCodec {
        /// The tag.
        tag: String,
    },
    /// A codec failed to encode or decode.
    #[error("codec `{tag}` failed: {source}")]
    Codec {
        /// The codec's tag.
        tag: String,
        /// The cause.
        #[source]
        source: BoxError,
    },
    /// A task must run in another process but its op cannot be rebuilt there.
    #[error("task {key} calls `{op}`, which is not registered, so it cannot run on a worker process: register the function with `dask_core::register_op!(path::to::function)` (an op struct with `dask_core::register_op_type!(Type)`; a bag's map, filter or flat_map function with `dask_bag::register_bag_fn!(map path::to::function)`), or use threads instead of processes (closures only run in-process)")]
    OpNotRegistered {
        /// The task.
        key: Key,
        /// The op's name.
        op: String,
    },
    /// A scheduler-specific failure (connection lost, worker died, ...).
    #[error("scheduler `{scheduler}`: {message}")]
    Scheduler {
        /// The scheduler's name.
        scheduler: String,
        /// What went wrong.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{action} {}: {source}", .path.display())]
    Io {
        /// What was being done (`writing the profile report to`).
        action: String,
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An internal invariant was broken: a bug in dask-rs.
    #[error("internal error (bug in dask-rs, please report it): {0}")]
    Internal(String),
}

impl Error {
    /// Wraps an op failure as [`Error::TaskFailed`] for `key`.
    pub fn task_failed(key: &Key, op: &str, source: BoxError) -> Self {
        Error::TaskFailed {
            key: key.clone(),
            op: op.to_owned(),
            message: source.to_string(),
            source,
        }
    }

    /// The key of the failing task, for [`Error::TaskFailed`].
    pub fn failed_key(&self) -> Option<&Key> {
        match self {
            Error::TaskFailed { key, .. } => Some(key),
            _ => None,
        }
    }
}

fn format_cycle(keys: &[Key]) -> String {
    keys.iter()
        .map(|k| k.to_string())
        .collect::<Vec<_>>()
        .join(" -> ")
}

/// The error a panicking op is reported with (as the source of [`Error::TaskFailed`]).
#[derive(Debug, Clone, thiserror::Error)]
#[error("panicked: {message}")]
pub struct Panicked {
    /// The panic payload, when it was a string.
    pub message: String,
}

impl Panicked {
    /// Builds the error from a payload caught by `catch_unwind`.
    pub fn from_payload(payload: Box<dyn std::any::Any + Send>) -> Self {
        let message = if let Some(s) = payload.downcast_ref::<&'static str>() {
            (*s).to_owned()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "non-string panic payload".to_owned()
        };
        Panicked { message }
    }
}
