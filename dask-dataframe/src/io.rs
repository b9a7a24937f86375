//! Paths and globs, `read_parquet`, and the writers `to_csv` / `to_parquet`
//! (one file per partition).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dask_core::{Arg, Op, Scheduler, Task};
use polars::prelude as pl;
use polars::prelude::SerReader;

use crate::frame::{DataFrame, Divisions};
use crate::ops::{Format, ReadParquet, WriteFile};
use crate::parts::Parts;
use crate::{Error, Result};

/// The files a path or glob pattern names, sorted. A pattern is a glob when
/// it holds `*`, `?` or `[`.
///
/// Errors: [`Error::NoFiles`], [`Error::Pattern`].
pub fn expand_paths(pattern: &str) -> Result<Vec<PathBuf>> {
    if !pattern.contains(['*', '?', '[']) {
        let p = PathBuf::from(pattern);
        return if p.is_file() {
            Ok(vec![p])
        } else {
            Err(Error::NoFiles {
                pattern: pattern.to_owned(),
            })
        };
    }
    let paths = glob::glob(pattern).map_err(|source| Error::Pattern {
        pattern: pattern.to_owned(),
        source,
    })?;
    let mut out: Vec<PathBuf> = paths
        .filter_map(|p| p.ok())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    if out.is_empty() {
        return Err(Error::NoFiles {
            pattern: pattern.to_owned(),
        });
    }
    Ok(out)
}

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_owned(),
        source,
    }
}

/// Reads parquet files, one partition per file: `path` is a file, a glob, or
/// a directory (its `*.parquet` files, as [`DataFrame::to_parquet`] writes
/// them). The schema comes from the first file's footer.
///
/// Errors: [`Error::NoFiles`], [`Error::Pattern`], [`Error::Io`],
/// [`Error::Polars`] (not a parquet file).
pub fn read_parquet(path: &str) -> Result<DataFrame> {
    let pattern = if Path::new(path).is_dir() {
        format!("{}/*.parquet", path.trim_end_matches('/'))
    } else {
        path.to_owned()
    };
    let paths = expand_paths(&pattern)?;
    let first = &paths[0];
    let file = File::open(first).map_err(|e| io_err(first, e))?;
    let meta = pl::ParquetReader::new(file)
        .with_slice(Some((0, 0)))
        .finish()
        .map_err(|e| Error::polars(format!("read_parquet `{}`", first.display()), e))?;
    let schema = meta.schema().clone();
    let op: Arc<dyn Op> = Arc::new(ReadParquet {
        schema: schema.clone(),
    });
    let tasks = paths
        .iter()
        .map(|p| {
            Task::new(
                op.clone(),
                vec![Arg::value(p.to_string_lossy().into_owned())],
            )
        })
        .collect();
    Ok(DataFrame::new(
        Parts::from_tasks("read_parquet", tasks, &[]),
        schema,
        Divisions::Unknown,
    ))
}

/// Reads one parquet file, which must have the schema `expected`.
pub(crate) fn read_parquet_file(path: &str, expected: &pl::Schema) -> Result<pl::DataFrame> {
    let p = Path::new(path);
    let file = File::open(p).map_err(|e| io_err(p, e))?;
    let df = pl::ParquetReader::new(file)
        .finish()
        .map_err(|e| Error::polars(format!("read_parquet `{path}`"), e))?;
    if df.schema().as_ref() != expected {
        return Err(Error::NotAligned {
            op: format!("read_parquet `{path}`"),
            message: format!(
                "this file's schema {:?} differs from the first file's {:?}: read them separately",
                df.schema(),
                expected
            ),
        });
    }
    Ok(df)
}

/// How a writer names partition `i`'s file.
fn file_names(pattern: &str, n: usize, default_name: &str) -> Result<Vec<PathBuf>> {
    if pattern.matches('*').count() > 1 {
        return Err(Error::invalid(
            "path",
            format!("`{pattern}` has more than one `*`; use one, replaced by the partition number"),
        ));
    }
    Ok((0..n)
        .map(|i| {
            if pattern.contains('*') {
                PathBuf::from(pattern.replace('*', &i.to_string()))
            } else {
                Path::new(pattern).join(default_name.replace('*', &i.to_string()))
            }
        })
        .collect())
}

impl DataFrame {
    /// Writes one CSV file per partition (with a header each) and returns
    /// their paths. `path` is a pattern whose `*` becomes the partition number
    /// (`out/part-*.csv`), or a directory (created if needed) that receives
    /// `0.part`, `1.part`, ... as Dask names them. Computes on `scheduler`.
    ///
    /// Errors: [`Error::Io`] (a failed write fails its task),
    /// [`Error::InvalidArgument`] for a pattern with two `*`.
    pub fn to_csv_with(&self, path: &str, scheduler: &dyn Scheduler) -> Result<Vec<PathBuf>> {
        let names = file_names(path, self.npartitions(), "*.part")?;
        let op: Arc<dyn Op> = Arc::new(WriteFile {
            format: Format::Csv,
        });
        self.write(names, op, scheduler)
    }

    /// [`to_csv_with`](Self::to_csv_with) on the default scheduler.
    pub fn to_csv(&self, path: &str) -> Result<Vec<PathBuf>> {
        self.to_csv_with(path, &*dask_core::scheduler::default_scheduler()?)
    }

    /// Writes one parquet file per partition into the directory `path`
    /// (created if needed) as `part.0.parquet`, `part.1.parquet`, ... (Dask's
    /// names), or to a pattern with a `*`; returns their paths.
    ///
    /// Errors: as [`to_csv_with`](Self::to_csv_with).
    pub fn to_parquet_with(&self, path: &str, scheduler: &dyn Scheduler) -> Result<Vec<PathBuf>> {
        let names = file_names(path, self.npartitions(), "part.*.parquet")?;
        let op: Arc<dyn Op> = Arc::new(WriteFile {
            format: Format::Parquet,
        });
        self.write(names, op, scheduler)
    }

    /// [`to_parquet_with`](Self::to_parquet_with) on the default scheduler.
    pub fn to_parquet(&self, path: &str) -> Result<Vec<PathBuf>> {
        self.to_parquet_with(path, &*dask_core::scheduler::default_scheduler()?)
    }

    fn write(
        &self,
        names: Vec<PathBuf>,
        op: Arc<dyn Op>,
        scheduler: &dyn Scheduler,
    ) -> Result<Vec<PathBuf>> {
        let tasks = names
            .iter()
            .enumerate()
            .map(|(i, p)| {
                Task::new(
                    op.clone(),
                    vec![
                        Arg::Key(self.parts.key(i)),
                        Arg::value(p.to_string_lossy().into_owned()),
                    ],
                )
            })
            .collect();
        let parts = Parts::from_tasks("to-file", tasks, &[&self.parts.graph]);
        Parts::compute_keys(&parts.graph, &parts.keys(), scheduler)?;
        Ok(names)
    }
}

/// Creates a file and its directory.
pub(crate) fn create(p: &Path) -> Result<File> {
    if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    }
    File::create(p).map_err(|e| io_err(p, e))
}
