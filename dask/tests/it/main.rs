//! Integration tests of the `dask` facade and binary.

mod bag_processes;
mod chaos;
mod dashboard;
mod dataframe_processes;
mod examples;
mod processes;
mod security;
mod seed_processes;
mod spill;
mod tour;
