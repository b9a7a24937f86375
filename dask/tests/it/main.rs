//! Integration tests of the `dask` facade and binary.

mod processes;
