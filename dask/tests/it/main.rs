//! Integration tests of the `dask` facade and binary.

mod dashboard;
mod processes;
mod security;
mod tour;
