//! `read_csv`: CSV files cut into byte-range blocks, one partition each.
//!
//! How it works, as in Dask:
//! - The dtypes are inferred once, from a sample of the first bytes of the
//!   first file (`sample`, 256 kB by default), then fixed: every block is
//!   parsed with that schema, so a value of another type later in the file
//!   fails its partition with [`Error::DtypeMismatch`], a table of column,
//!   found and expected dtypes and the exact `dtype` overrides that fix it.
//! - Blocks are nominal byte ranges of `blocksize` bytes; a block holds the
//!   lines that *start* in its range, so blocks are cut at line ends without
//!   reading the file while the graph is built (the number of partitions is
//!   known from the file sizes). The header line is read once and given to
//!   every block.
//! - A quoted field holding a newline is parsed correctly inside a block;
//!   one crossing a block boundary is detected (an odd number of quote
//!   characters in the block) and refused with [`Error::QuotedNewline`]:
//!   read such files with `blocksize: None`.
//!
//! Missing integers: polars integers are nullable, so an integer column with
//! empty fields later in the file (the taxi data's `VendorID` in its last
//! rows) stays an integer column with nulls, where pandas would need floats.
//! That is not an error. A real mismatch (an integer column holding `3.5`
//! or `abc` later) is.

use std::fs::File;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use dask_core::{Arg, Op, Task};
use polars::prelude as pl;
use polars::prelude::{DataType, SerReader};
use serde::{Deserialize, Serialize};

use crate::frame::{DataFrame, Divisions, Origin};
use crate::io::expand_paths;
use crate::ops::ReadCsvBlock;
use crate::parts::Parts;
use crate::plain_csv::{plain_numbers, plain_rows};
use crate::{Error, Result};

/// Options of [`read_csv`], with Dask's names and defaults.
#[derive(Clone, Debug)]
pub struct CsvOptions {
    /// Bytes per partition (`None`: one partition per file). Default 64 MB.
    pub blocksize: Option<u64>,
    /// Bytes of the first file sampled to infer the dtypes. Default 256 000.
    pub sample: usize,
    /// Per-column dtypes that replace the inferred ones.
    pub dtype: Vec<(String, DataType)>,
    /// Read every integer column without a `dtype` override as Float64.
    pub assume_missing: bool,
    /// Read only these columns (kept in file order).
    pub usecols: Option<Vec<String>>,
    /// Parse these columns as datetimes (microseconds, no time zone).
    pub parse_dates: Vec<String>,
    /// Field separator. Default `,`.
    pub separator: u8,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            blocksize: Some(64_000_000),
            sample: 256_000,
            dtype: Vec::new(),
            assume_missing: false,
            usecols: None,
            parse_dates: Vec::new(),
            separator: b',',
        }
    }
}

impl CsvOptions {
    /// Sets `blocksize` (bytes per partition; `None` for one per file).
    pub fn blocksize(mut self, blocksize: Option<u64>) -> Self {
        self.blocksize = blocksize;
        self
    }

    /// Sets `sample` (bytes sampled for dtype inference).
    pub fn sample(mut self, sample: usize) -> Self {
        self.sample = sample;
        self
    }

    /// Overrides the dtype of `column`.
    pub fn dtype(mut self, column: &str, dtype: DataType) -> Self {
        self.dtype.retain(|(c, _)| c != column);
        self.dtype.push((column.to_owned(), dtype));
        self
    }

    /// Sets `assume_missing` (integer columns read as Float64).
    pub fn assume_missing(mut self, yes: bool) -> Self {
        self.assume_missing = yes;
        self
    }

    /// Reads only `columns`.
    pub fn usecols(mut self, columns: &[&str]) -> Self {
        self.usecols = Some(columns.iter().map(|c| (*c).to_owned()).collect());
        self
    }

    /// Parses `columns` as datetimes.
    pub fn parse_dates(mut self, columns: &[&str]) -> Self {
        self.parse_dates = columns.iter().map(|c| (*c).to_owned()).collect();
        self
    }

    /// Sets the field separator.
    pub fn separator(mut self, separator: u8) -> Self {
        self.separator = separator;
        self
    }
}

/// What every block task needs: the file schema and the projection.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Spec {
    /// Every column of the file, with the dtypes to parse.
    #[serde(with = "crate::wire::schema")]
    file_schema: pl::SchemaRef,
    /// The columns kept (file order), or `None` for all.
    usecols: Option<Vec<String>>,
    /// The result's schema.
    #[serde(with = "crate::wire::schema")]
    out_schema: pl::SchemaRef,
    separator: u8,
    /// Read for [`DataFrame::len`]: each block becomes a frame with no
    /// columns and its row count as height (see [`plain_rows`]).
    #[serde(default)]
    rows_only: bool,
}

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_owned(),
        source,
    }
}

/// Reads the first line of a file and the sample (whole lines, at least the
/// header). Returns `(header, sample)`.
fn read_sample(path: &Path, sample: usize) -> Result<(Vec<u8>, Vec<u8>)> {
    let mut file = File::open(path).map_err(|e| io_err(path, e))?;
    let size = file.metadata().map_err(|e| io_err(path, e))?.len();
    if size == 0 {
        return Err(Error::EmptyFile {
            path: path.to_owned(),
        });
    }
    let mut buf = Vec::new();
    (&mut file)
        .take(sample.max(1) as u64)
        .read_to_end(&mut buf)
        .map_err(|e| io_err(path, e))?;
    // Make sure the whole header line is there.
    while !buf.contains(&b'\n') && (buf.len() as u64) < size {
        let before = buf.len();
        (&mut file)
            .take(65_536)
            .read_to_end(&mut buf)
            .map_err(|e| io_err(path, e))?;
        if buf.len() == before {
            break;
        }
    }
    if (buf.len() as u64) < size {
        // Keep whole lines only.
        if let Some(last) = buf.iter().rposition(|&b| b == b'\n') {
            buf.truncate(last + 1);
        }
    }
    let header_end = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
    let mut header = buf[..header_end].to_vec();
    if header.last() == Some(&b'\r') {
        header.pop();
    }
    if header.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::EmptyFile {
            path: path.to_owned(),
        });
    }
    Ok((header, buf))
}

/// Reads `path` (a file or a glob) as a dataframe of CSV blocks.
///
/// ```no_run
/// use dask_dataframe::{read_csv, CsvOptions};
/// use dask_core::Collection;
/// let df = read_csv("data/yellow_tripdata_*.csv", &CsvOptions::default().blocksize(Some(12_000_000)))?;
/// println!("{df}"); // npartitions, column names and dtypes
/// let vendors = df.column("VendorID")?.unique()?.compute()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Errors (while building): [`Error::NoFiles`], [`Error::Pattern`],
/// [`Error::Io`], [`Error::EmptyFile`], [`Error::NoRowsToInfer`] (a header
/// without rows and no `dtype` for some column), [`Error::UnknownColumn`] (in
/// `dtype`, `usecols` or `parse_dates`), [`Error::InvalidArgument`] (a zero
/// `blocksize`, files with different headers). While computing, a partition
/// fails with [`Error::DtypeMismatch`], [`Error::Csv`] (ragged rows) or
/// [`Error::QuotedNewline`].
pub fn read_csv(pattern: &str, options: &CsvOptions) -> Result<DataFrame> {
    read_csv_as(pattern, options, false)
}

/// [`read_csv`]'s blocks read as row counts only: frames without columns
/// whose heights are the blocks' rows (for [`DataFrame::len`]).
pub(crate) fn read_csv_rows(pattern: &str, options: &CsvOptions) -> Result<DataFrame> {
    read_csv_as(pattern, options, true)
}

fn read_csv_as(pattern: &str, options: &CsvOptions, rows_only: bool) -> Result<DataFrame> {
    if options.blocksize == Some(0) {
        return Err(Error::invalid(
            "blocksize",
            "blocks must hold at least one byte: pass a positive size, or None for one partition per file",
        ));
    }
    let paths = expand_paths(pattern)?;
    let first = &paths[0];
    let (header, sample) = read_sample(first, options.sample)?;
    let sample_len = sample.len() as u64;
    let inferred = pl::CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(None)
        .map_parse_options(|o| o.with_separator(options.separator))
        .into_reader_with_file_handle(Cursor::new(sample))
        .finish()
        .map_err(|e| Error::Csv {
            path: first.clone(),
            partition: 0,
            start: 0,
            end: sample_len,
            source: e,
        })?;
    let mut spec = build_spec(first, options, &inferred)?;
    if rows_only {
        // A block that is not plain records is parsed (its first column
        // only) to be counted or explained.
        let first_column = spec.file_schema.iter_names().next().map(|n| n.to_string());
        spec.usecols = Some(first_column.into_iter().collect());
        spec.out_schema = Arc::new(pl::Schema::default());
        spec.rows_only = true;
    }
    let spec = Arc::new(spec);
    // Every file must have the first file's header.
    for path in &paths[1..] {
        let (h, _) = read_sample(path, 1)?;
        if h != header {
            return Err(Error::invalid(
                "path",
                format!(
                    "`{}` has the header `{}` but `{}` has `{}`: read files of different layouts separately",
                    path.display(),
                    String::from_utf8_lossy(&h),
                    first.display(),
                    String::from_utf8_lossy(&header)
                ),
            ));
        }
    }
    let mut tasks = Vec::new();
    for path in &paths {
        let size = std::fs::metadata(path).map_err(|e| io_err(path, e))?.len();
        let bs = options.blocksize.unwrap_or(size).max(1);
        let mut start = 0;
        loop {
            let end = (start + bs).min(size);
            tasks.push((path.clone(), start, end));
            start = end;
            if start >= size {
                break;
            }
        }
    }
    let op: Arc<dyn Op> = Arc::new(ReadCsvBlock {
        spec: spec.as_ref().clone(),
    });
    let tasks: Vec<Task> = tasks
        .into_iter()
        .enumerate()
        .map(|(i, (path, start, end))| {
            Task::new(
                op.clone(),
                vec![
                    Arg::value(path.to_string_lossy().into_owned()),
                    Arg::value(i),
                    Arg::value(start),
                    Arg::value(end),
                ],
            )
        })
        .collect();
    let parts = Parts::from_tasks("read_csv", tasks, &[]);
    let mut df = DataFrame::new(parts, spec.out_schema.clone(), Divisions::Unknown);
    if !rows_only {
        df.origin = Some(Arc::new(Origin::Csv {
            pattern: pattern.to_owned(),
            options: options.clone(),
        }));
    }
    Ok(df)
}

/// The file schema from the inferred sample and the options.
fn build_spec(path: &Path, options: &CsvOptions, inferred: &pl::DataFrame) -> Result<Spec> {
    let schema = inferred.schema();
    let named = |op: &str, c: &str| -> Result<()> {
        if schema.get(c).is_none() {
            return Err(crate::frame::unknown_column(op, c, schema));
        }
        Ok(())
    };
    for (c, _) in &options.dtype {
        named("read_csv dtype", c)?;
    }
    for c in &options.parse_dates {
        named("read_csv parse_dates", c)?;
    }
    for c in options.usecols.iter().flatten() {
        named("read_csv usecols", c)?;
    }
    let no_rows = inferred.height() == 0;
    let mut missing = Vec::new();
    let mut file_schema = pl::Schema::with_capacity(schema.len());
    for (name, dtype) in schema.iter() {
        let over = options.dtype.iter().find(|(c, _)| c == name.as_str());
        let dtype = if let Some((_, d)) = over {
            d.clone()
        } else if options.parse_dates.iter().any(|c| c == name.as_str()) {
            DataType::Datetime(pl::TimeUnit::Microseconds, None)
        } else if no_rows {
            missing.push(name.to_string());
            DataType::String
        } else if options.assume_missing && dtype.is_integer() {
            DataType::Float64
        } else {
            dtype.clone()
        };
        file_schema.with_column(name.clone(), dtype);
    }
    if !missing.is_empty() {
        return Err(Error::NoRowsToInfer {
            path: path.to_owned(),
            sample: options.sample,
            columns: missing,
        });
    }
    let usecols: Option<Vec<String>> = options.usecols.as_ref().map(|u| {
        file_schema
            .iter_names()
            .filter(|n| u.iter().any(|c| c == n.as_str()))
            .map(|n| n.to_string())
            .collect()
    });
    let out_schema = match &usecols {
        Some(u) => u
            .iter()
            .map(|n| {
                let d = file_schema.get(n).cloned().unwrap_or(DataType::Null);
                pl::Field::new(n.as_str().into(), d)
            })
            .collect(),
        None => file_schema.clone(),
    };
    Ok(Spec {
        file_schema: Arc::new(file_schema),
        usecols,
        out_schema: Arc::new(out_schema),
        separator: options.separator,
        rows_only: false,
    })
}

/// The position just after the first `\n` at or after `pos` (or `size`).
fn next_line_start(file: &mut File, path: &Path, pos: u64, size: u64) -> Result<u64> {
    file.seek(SeekFrom::Start(pos))
        .map_err(|e| io_err(path, e))?;
    let mut buf = vec![0u8; 65_536];
    let mut at = pos;
    while at < size {
        let n = file.read(&mut buf).map_err(|e| io_err(path, e))?;
        if n == 0 {
            break;
        }
        if let Some(i) = buf[..n].iter().position(|&b| b == b'\n') {
            return Ok(at + i as u64 + 1);
        }
        at += n as u64;
    }
    Ok(size)
}

/// Reads the lines starting in `start..end` (minus the header) and parses them.
pub(crate) fn read_block(
    spec: &Spec,
    path: &Path,
    partition: usize,
    start: u64,
    end: u64,
) -> Result<pl::DataFrame> {
    let mut file = File::open(path).map_err(|e| io_err(path, e))?;
    let size = file.metadata().map_err(|e| io_err(path, e))?.len();
    // A block holds the lines starting in [start, end); block 0 skips the header.
    let s = if start == 0 {
        next_line_start(&mut file, path, 0, size)?
    } else {
        next_line_start(&mut file, path, start - 1, size)?
    };
    let e = if end >= size {
        size
    } else {
        next_line_start(&mut file, path, end - 1, size)?
    };
    if s >= e {
        return Ok(pl::DataFrame::empty_with_schema(&spec.out_schema));
    }
    // Read into spare capacity: zeroing the block first cost 4% of a read.
    let len = (e - s) as usize;
    let mut bytes = Vec::with_capacity(len);
    file.seek(SeekFrom::Start(s)).map_err(|e| io_err(path, e))?;
    (&mut file)
        .take(e - s)
        .read_to_end(&mut bytes)
        .map_err(|e| io_err(path, e))?;
    if bytes.len() != len {
        let short = std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("the file ended {} bytes into a block of {len}", bytes.len()),
        );
        return Err(io_err(path, short));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(pl::DataFrame::empty_with_schema(&spec.out_schema));
    }
    // A block of plain records is read without polars.
    let plain = if spec.rows_only {
        plain_rows(&bytes, spec.separator, spec.file_schema.len())
            .map(pl::DataFrame::empty_with_height)
    } else {
        plain_numbers(&bytes, spec.separator, &spec.file_schema, &spec.out_schema)
    };
    if let Some(df) = plain {
        return Ok(df);
    }
    if memchr::memchr_iter(b'"', &bytes).count() % 2 == 1 {
        return Err(Error::QuotedNewline {
            path: path.to_owned(),
            offset: e,
        });
    }
    let parse = |schema: Option<pl::SchemaRef>, bytes: Vec<u8>| {
        // Parse only the kept columns (the diagnosis, without a schema, parses all).
        let columns: Option<Arc<[pl::PlSmallStr]>> = schema.as_ref().and(
            spec.usecols
                .as_ref()
                .map(|u| u.iter().map(|c| c.as_str().into()).collect()),
        );
        pl::CsvReadOptions::default()
            .with_has_header(false)
            .with_columns(columns)
            .with_schema(schema)
            .with_infer_schema_length(None)
            .map_parse_options(|o| o.with_separator(spec.separator))
            .into_reader_with_file_handle(Cursor::new(bytes))
            .finish()
    };
    match parse(Some(spec.file_schema.clone()), bytes.clone()) {
        Ok(df) if spec.rows_only => Ok(pl::DataFrame::empty_with_height(df.height())),
        Ok(df) => {
            let names: Vec<pl::PlSmallStr> = spec.out_schema.iter_names().cloned().collect();
            if names.len() == df.width() {
                Ok(df)
            } else {
                df.select(names).map_err(|source| Error::Csv {
                    path: path.to_owned(),
                    partition,
                    start: s,
                    end: e,
                    source,
                })
            }
        }
        Err(source) => {
            let columns = diagnose(spec, parse(None, bytes).ok());
            if columns.is_empty() {
                Err(Error::Csv {
                    path: path.to_owned(),
                    partition,
                    start: s,
                    end: e,
                    source,
                })
            } else {
                Err(Error::DtypeMismatch {
                    path: path.to_owned(),
                    partition,
                    start: s,
                    end: e,
                    columns,
                })
            }
        }
    }
}

/// The columns whose dtype in `block` (parsed with inference) cannot be read
/// as the expected one: `(column, found, expected)`.
fn diagnose(spec: &Spec, block: Option<pl::DataFrame>) -> Vec<(String, String, String)> {
    let Some(block) = block else {
        return Vec::new();
    };
    if block.width() != spec.file_schema.len() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (col, (name, expected)) in block.columns().iter().zip(spec.file_schema.iter()) {
        if let Some(u) = &spec.usecols {
            if !u.iter().any(|c| c == name.as_str()) {
                continue;
            }
        }
        let found = col.dtype();
        let all_null = col.null_count() == col.len();
        let fits = found == expected
            || all_null
            || *expected == DataType::String
            || (expected.is_float() && (found.is_integer() || found.is_float()))
            || (expected.is_integer() && found.is_integer())
            || (matches!(expected, DataType::Datetime(..)) && *found == DataType::String);
        if !fits {
            out.push((
                name.to_string(),
                format!("{found:?}"),
                format!("{expected:?}"),
            ));
        }
    }
    out
}
