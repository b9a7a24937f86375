//! Integration tests of the `dask` facade and binary.

mod chaos;
mod dashboard;
mod examples;
mod processes;
mod security;
mod spill;
mod tour;
