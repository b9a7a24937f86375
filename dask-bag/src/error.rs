//! The error type of dask-bag.

use std::path::PathBuf;

/// `Result` with dask-bag's [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while building or computing a bag.
///
/// Errors found while building a bag (a missing file, a bad argument) are
/// returned directly. Errors found while a task runs (an unreadable line, a
/// missing JSON field) fail that task: `compute` then returns
/// [`dask_core::Error::TaskFailed`] naming the partition's key, with this error
/// as its source. [`Error::find`] digs it out of the source chain.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An error from dask-core (building or computing a graph).
    #[error(transparent)]
    Core(#[from] dask_core::Error),
    /// A file could not be opened, read or written.
    #[error("I/O error on `{}`: {source}; check that the path exists and is readable (or, when writing, that its directory is writable)", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A path or glob pattern matched no file.
    #[error("no file matches `{pattern}`: check the path, or the glob pattern (`*`, `?`, `[ab]`) and the working directory")]
    NoFiles {
        /// The path or pattern given.
        pattern: String,
    },
    /// A glob pattern is malformed.
    #[error("invalid glob pattern `{pattern}`: {source}; fix the pattern (see the `glob` crate's syntax)")]
    Pattern {
        /// The pattern given.
        pattern: String,
        /// What is wrong with it.
        #[source]
        source: glob::PatternError,
    },
    /// A line of a text file is not valid UTF-8.
    #[error("`{}`: the line starting at byte {offset} is not valid UTF-8 ({source}); re-encode the file as UTF-8 or clean the line", path.display())]
    InvalidUtf8 {
        /// The file.
        path: PathBuf,
        /// Byte offset of the line's start in the file (in the decompressed
        /// stream for `.gz` files).
        offset: u64,
        /// Where the bytes stop being UTF-8.
        #[source]
        source: std::str::Utf8Error,
    },
    /// A record is not valid JSON.
    #[error("partition {partition}, record {record}: not valid JSON ({source}); fix the record or filter it out before parsing")]
    Json {
        /// The partition's index.
        partition: usize,
        /// The record's position in its partition.
        record: usize,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A JSON record lacks the field `pluck` asked for.
    #[error("partition {partition}, record {record}: no field {field} in {found}; filter such records out first, or pluck a field every record has")]
    MissingField {
        /// The partition's index.
        partition: usize,
        /// The record's position in its partition.
        record: usize,
        /// The key or index asked for.
        field: String,
        /// What the record is (`an object without that key`, `an array of 2`, ...).
        found: String,
    },
    /// A fallible closure given to [`Bag::try_map`](crate::Bag::try_map) returned an error.
    #[error("partition {partition}, record {record}: the `try_map` closure failed: {source}")]
    MapFailed {
        /// The partition's index.
        partition: usize,
        /// The record's position in its partition (counted at the `try_map`'s input).
        record: usize,
        /// The closure's error.
        #[source]
        source: dask_core::BoxError,
    },
    /// `zip` of bags with different numbers of partitions.
    #[error("cannot zip a bag of {left} partitions with a bag of {right}: zip pairs partition i with partition i; build both bags with the same number of partitions")]
    ZipMismatch {
        /// Partitions of the left bag.
        left: usize,
        /// Partitions of the right bag.
        right: usize,
    },
    /// `zip` of partitions of different lengths.
    #[error("zip: partition {partition} of the {shorter} bag ends after {len} items, the other has more; zip needs equally long partitions: build both bags with the same partitioning")]
    ZipLengthMismatch {
        /// The partition's index.
        partition: usize,
        /// `"left"` or `"right"`.
        shorter: &'static str,
        /// The length of the shorter partition.
        len: usize,
    },
    /// A reduction without identity (`min`, `max`, `mean`) of an empty bag.
    #[error("`{op}` of an empty bag has no value; check that the bag is not empty (e.g. with `count`) or use `fold` with an initial value")]
    Empty {
        /// The reduction.
        op: &'static str,
    },
    /// An error from dask-dataframe (`to_dataframe`).
    #[cfg(feature = "dataframe")]
    #[error(transparent)]
    DataFrame(#[from] dask_dataframe::Error),
    /// polars could not build a partition's frame (`to_dataframe`).
    #[cfg(feature = "dataframe")]
    #[error("to_dataframe, {what}: polars could not build the frame: {source}; fix the conversion function or the items it gets")]
    Frame {
        /// Which partition (or the empty one used to find the meta).
        what: String,
        /// What polars reported.
        #[source]
        source: dask_dataframe::polars::prelude::PolarsError,
    },
    /// The columns of JSON records could not be inferred (`to_dataframe_json`
    /// without `meta`).
    #[cfg(feature = "dataframe")]
    #[error("to_dataframe_json: cannot infer the columns: {reason}; pass a `meta` schema")]
    JsonInference {
        /// What was found.
        reason: String,
    },
    /// A JSON record does not fit the dataframe's columns (`to_dataframe_json`).
    #[cfg(feature = "dataframe")]
    #[error("to_dataframe_json: partition {partition}, record {record}: {problem}; make the records agree (map or filter them first) or pass a `meta` schema that fits them")]
    JsonRecord {
        /// The partition's index.
        partition: usize,
        /// The record's position in its partition.
        record: usize,
        /// What does not fit.
        problem: String,
    },
    /// An argument is out of its valid range.
    #[error("invalid argument `{argument}`: {message}")]
    InvalidArgument {
        /// The argument's name.
        argument: &'static str,
        /// What was wrong and what is allowed.
        message: String,
    },
}

impl Error {
    /// The first dask-bag [`Error`] in `err`'s source chain (`err` included).
    ///
    /// A bag error raised inside a task reaches the caller as the source of
    /// [`dask_core::Error::TaskFailed`]; this finds it:
    ///
    /// ```
    /// use dask_bag::{Bag, Error};
    /// use dask_core::Collection;
    /// use dask_sync_scheduler::SyncScheduler;
    ///
    /// let bag = Bag::from_sequence(vec![String::from("{\"a\": 1}"), String::from("nope")], 1).unwrap();
    /// let err = bag.pluck("a").compute_with(&SyncScheduler::new()).unwrap_err();
    /// assert!(matches!(Error::find(&err), Some(Error::Json { record: 1, .. })));
    /// ```
    pub fn find<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a Error> {
        let mut current = Some(err);
        while let Some(e) = current {
            if let Some(found) = e.downcast_ref::<Error>() {
                return Some(found);
            }
            current = e.source();
        }
        None
    }

    pub(crate) fn invalid(argument: &'static str, message: impl Into<String>) -> Error {
        Error::InvalidArgument {
            argument,
            message: message.into(),
        }
    }
}
