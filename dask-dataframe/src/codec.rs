//! Codecs: polars frames and series cross process boundaries as Arrow IPC.
//!
//! Registered into dask-core's codec registry, so a distributed worker
//! process that links this crate can receive and send partitions.

use std::any::TypeId;
use std::io::Cursor;

use dask_core::codec::CodecRegistration;
use dask_core::{BoxError, Value};
use polars::prelude as pl;
use polars::prelude::{SerReader, SerWriter};

/// Encodes a frame as an Arrow IPC file.
pub fn encode_frame(df: &pl::DataFrame) -> Result<Vec<u8>, BoxError> {
    let mut buf = Vec::new();
    let mut df = df.clone();
    pl::IpcWriter::new(&mut buf).finish(&mut df)?;
    Ok(buf)
}

/// Decodes a frame written by [`encode_frame`].
pub fn decode_frame(bytes: &[u8]) -> Result<pl::DataFrame, BoxError> {
    Ok(pl::IpcReader::new(Cursor::new(bytes)).finish()?)
}

fn encode_df(v: &Value) -> Result<Vec<u8>, BoxError> {
    encode_frame(v.downcast_ref::<pl::DataFrame>()?)
}

fn decode_df(bytes: &[u8]) -> Result<Value, BoxError> {
    Ok(Value::new(decode_frame(bytes)?))
}

fn encode_series(v: &Value) -> Result<Vec<u8>, BoxError> {
    encode_frame(&v.downcast_ref::<pl::Series>()?.clone().into_frame())
}

fn decode_series(bytes: &[u8]) -> Result<Value, BoxError> {
    let df = decode_frame(bytes)?;
    let col = df
        .columns()
        .first()
        .ok_or("an encoded series must hold one column, found none")?;
    Ok(Value::new(col.as_materialized_series().clone()))
}

dask_core::__private::inventory::submit! {
    CodecRegistration {
        tag: || "polars::DataFrame/arrow-ipc",
        type_id: TypeId::of::<pl::DataFrame>,
        encode: encode_df,
        decode: decode_df,
    }
}

// Sizes for the workers' memory accounting, without encoding (polars'
// estimate of the buffers held).
dask_core::register_sizeof!(pl::DataFrame, |df: &pl::DataFrame| df.estimated_size()
    as u64);
dask_core::register_sizeof!(pl::Series, |s: &pl::Series| s.estimated_size() as u64);

dask_core::__private::inventory::submit! {
    CodecRegistration {
        tag: || "polars::Series/arrow-ipc",
        type_id: TypeId::of::<pl::Series>,
        encode: encode_series,
        decode: decode_series,
    }
}
