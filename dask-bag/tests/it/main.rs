//! Integration tests of dask-bag: every operation against std iterators on the
//! whole data (the oracle), over random data and partitionings, on the sync and
//! threaded (1 and 4 threads) schedulers.

mod common;
#[cfg(feature = "dataframe")]
mod dataframe;
mod errors;
mod fusion;
mod ops;
mod portable;
mod text;
mod words;
