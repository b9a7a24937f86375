//! Partitioned dataframes of polars partitions (not built yet: see issue 5).
//!
//! This crate will hold `DataFrame`/`Series` with a meta schema and divisions,
//! `read_csv`/`read_parquet`, `map_partitions`, groupby, merge and shuffles,
//! computed on any `dask_core::Scheduler`. Today it is empty.
#![warn(missing_docs)]
