//! The error type of dask-dataframe.

use std::path::PathBuf;

use polars::prelude::PolarsError;

/// `Result` with dask-dataframe's [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while building or computing a dataframe.
///
/// Errors found while building a collection (a missing file, an unknown
/// column, a bad expression: dataframe operations are checked against the
/// meta schema as they are built) are returned directly. Errors found while a
/// task runs (a partition whose data disagree with the inferred dtypes) fail
/// that task: `compute` then returns [`dask_core::Error::TaskFailed`] naming
/// the partition's key, with this error as its source. [`Error::find`] digs it
/// out of the source chain.
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
    /// A CSV file is empty: not even a header line.
    #[error("`{}` is empty (no header line): a CSV file needs at least a header; remove it from the paths or write its header", path.display())]
    EmptyFile {
        /// The file.
        path: PathBuf,
    },
    /// The dtypes could not be inferred: the sample holds a header but no rows.
    #[error("`{}` has a header but no data rows in its first {sample} bytes, so the dtypes of {columns:?} cannot be inferred: give them in `CsvOptions::dtype` (or raise `sample`)", path.display())]
    NoRowsToInfer {
        /// The file sampled.
        path: PathBuf,
        /// The sample size in bytes.
        sample: usize,
        /// The columns without a `dtype` override.
        columns: Vec<String>,
    },
    /// A partition of a CSV file disagrees with the dtypes inferred from the
    /// sample. The message is a table of column, found and expected dtypes
    /// with the `dtype` overrides that fix it.
    #[error("{}", mismatch_message(path, *partition, *start, *end, columns))]
    DtypeMismatch {
        /// The file.
        path: PathBuf,
        /// The partition's index in the dataframe.
        partition: usize,
        /// First byte of the partition's block in the file.
        start: u64,
        /// End (exclusive) of the block.
        end: u64,
        /// Each mismatched column: name, dtype found in the block, dtype expected.
        columns: Vec<(String, String, String)>,
    },
    /// A block of a CSV file could not be parsed (ragged rows, bad quoting).
    #[error("`{}`, partition {partition} (bytes {start}..{end}): {source}; fix the rows in that range, or read the file with other `CsvOptions`", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// The partition's index in the dataframe.
        partition: usize,
        /// First byte of the block.
        start: u64,
        /// End (exclusive) of the block.
        end: u64,
        /// What polars reported.
        #[source]
        source: PolarsError,
    },
    /// A quoted field with a newline crosses a block boundary.
    #[error("`{}`: a quoted field holding a newline crosses the block boundary near byte {offset}, so blocks cannot be cut at line ends there; read the file whole with `blocksize: None`", path.display())]
    QuotedNewline {
        /// The file.
        path: PathBuf,
        /// The block boundary inside the quoted field.
        offset: u64,
    },
    /// A column named by an operation is not in the dataframe.
    #[error("{op}: no column `{column}`; the columns are {available:?}")]
    UnknownColumn {
        /// The operation (`select`, `groupby`, `read_csv usecols`, ...).
        op: String,
        /// The missing column.
        column: String,
        /// The columns that exist.
        available: Vec<String>,
    },
    /// An operation failed when tried on the meta (empty) frame, so it would
    /// fail on every partition: a bad expression, a type error.
    #[error("{op}: {source}")]
    Polars {
        /// The operation and what it was given.
        op: String,
        /// What polars reported.
        #[source]
        source: PolarsError,
    },
    /// Two collections combined partition by partition are not aligned.
    #[error("{op}: {message}")]
    NotAligned {
        /// The operation.
        op: String,
        /// What differs and how to fix it.
        message: String,
    },
    /// An argument is out of its domain.
    #[error("invalid `{name}`: {message}")]
    InvalidArgument {
        /// The argument.
        name: &'static str,
        /// What is wrong and what to pass instead.
        message: String,
    },
}

impl Error {
    /// An [`Error::InvalidArgument`].
    pub(crate) fn invalid(name: &'static str, message: impl Into<String>) -> Error {
        Error::InvalidArgument {
            name,
            message: message.into(),
        }
    }

    /// An [`Error::Polars`] for `op`.
    pub(crate) fn polars(op: impl Into<String>, source: PolarsError) -> Error {
        Error::Polars {
            op: op.into(),
            source,
        }
    }

    /// The first dask-dataframe error in `err`'s source chain (a failed
    /// task's cause), if any.
    pub fn find<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a Error> {
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(e) = cur {
            if let Some(found) = e.downcast_ref::<Error>() {
                return Some(found);
            }
            cur = e.source();
        }
        None
    }
}

/// Dask's message for a partition that disagrees with the inferred dtypes.
fn mismatch_message(
    path: &std::path::Path,
    partition: usize,
    start: u64,
    end: u64,
    columns: &[(String, String, String)],
) -> String {
    let headers = ("Column", "Found", "Expected");
    let w0 = columns
        .iter()
        .map(|c| c.0.len())
        .max()
        .unwrap_or(0)
        .max(headers.0.len());
    let w1 = columns
        .iter()
        .map(|c| c.1.len())
        .max()
        .unwrap_or(0)
        .max(headers.1.len());
    let w2 = columns
        .iter()
        .map(|c| c.2.len())
        .max()
        .unwrap_or(0)
        .max(headers.2.len());
    let rule = format!(
        "+-{}-+-{}-+-{}-+\n",
        "-".repeat(w0),
        "-".repeat(w1),
        "-".repeat(w2)
    );
    let mut table = rule.clone();
    table += &format!(
        "| {:w0$} | {:w1$} | {:w2$} |\n",
        headers.0, headers.1, headers.2
    );
    table += &rule;
    for (c, found, expected) in columns {
        table += &format!("| {c:w0$} | {found:w1$} | {expected:w2$} |\n");
    }
    table += &rule;
    let overrides: Vec<String> = columns
        .iter()
        .map(|(c, found, _)| format!("    .dtype({c:?}, DataType::{found})"))
        .collect();
    let only_ints_to_floats = columns
        .iter()
        .all(|(_, found, expected)| found.starts_with("Float") && expected.contains("Int"));
    let alternative = if only_ints_to_floats {
        "\n\nAlternatively, set `assume_missing(true)` to read every integer column \
         without a `dtype` override as Float64."
    } else {
        ""
    };
    format!(
        "Mismatched dtypes found in `read_csv` partition {partition} of `{}` (bytes {start}..{end}).\n\n\
         {table}\n\
         Usually this is due to dtype inference failing: the dtypes were inferred from a sample \
         of the first bytes of the file, and this block holds values of another type. Either set \
         the dtypes explicitly in the options:\n\n\
         CsvOptions::default()\n{}{alternative}",
        path.display(),
        overrides.join("\n")
    )
}
