//! Polars values inside op parameters, and codecs for the values tasks pass
//! between worker processes.
//!
//! Polars' own `serde` feature is off (it would rebuild polars), so schemas,
//! dtypes, series and scalars inside registered op structs travel as Arrow
//! IPC bytes: a schema as an empty frame, a series as a one-column frame, a
//! scalar as a one-value series. Arrow IPC round-trips every dtype dask-rs
//! frames use (numbers, strings, booleans, temporal types).
//!
//! Codecs registered here: `Vec<pl::DataFrame>` (the pieces of a shuffle
//! split) and `pl::Scalar` (a series reduction's result).

use std::any::TypeId;
use std::sync::Arc;

use dask_core::codec::CodecRegistration;
use dask_core::{BoxError, Value};
use polars::prelude as pl;
use polars::prelude::DataType;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::codec::{decode_frame, encode_frame};

fn ser_err<S: Serializer>(e: impl std::fmt::Display) -> S::Error {
    serde::ser::Error::custom(e)
}

fn de_err<'de, D: Deserializer<'de>>(e: impl std::fmt::Display) -> D::Error {
    serde::de::Error::custom(e)
}

fn schema_to_bytes(schema: &pl::Schema) -> Result<Vec<u8>, BoxError> {
    encode_frame(&pl::DataFrame::empty_with_schema(schema))
}

fn schema_from_bytes(bytes: &[u8]) -> Result<pl::Schema, BoxError> {
    Ok(decode_frame(bytes)?.schema().as_ref().clone())
}

/// `#[serde(with = "wire::schema")]` for a `SchemaRef`.
pub(crate) mod schema {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &pl::SchemaRef, s: S) -> Result<S::Ok, S::Error> {
        schema_to_bytes(v).map_err(ser_err::<S>)?.serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<pl::SchemaRef, D::Error> {
        let bytes = Vec::<u8>::deserialize(d)?;
        Ok(Arc::new(schema_from_bytes(&bytes).map_err(de_err::<D>)?))
    }
}

/// `#[serde(with = "wire::dtypes")]` for a `Vec<DataType>`.
pub(crate) mod dtypes {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &[DataType], s: S) -> Result<S::Ok, S::Error> {
        let schema: pl::Schema = v
            .iter()
            .enumerate()
            .map(|(i, d)| pl::Field::new(format!("c{i}").into(), d.clone()))
            .collect();
        schema_to_bytes(&schema).map_err(ser_err::<S>)?.serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<DataType>, D::Error> {
        let bytes = Vec::<u8>::deserialize(d)?;
        let schema = schema_from_bytes(&bytes).map_err(de_err::<D>)?;
        Ok(schema.iter_values().cloned().collect())
    }
}

fn series_to_bytes(s: &pl::Series) -> Result<Vec<u8>, BoxError> {
    encode_frame(&s.clone().into_frame())
}

fn series_from_bytes(bytes: &[u8]) -> Result<pl::Series, BoxError> {
    let df = decode_frame(bytes)?;
    let col = df
        .columns()
        .first()
        .ok_or("an encoded series must hold one column, found none")?;
    Ok(col.as_materialized_series().clone())
}

/// `#[serde(with = "wire::series")]` for a `pl::Series`.
pub(crate) mod series {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &pl::Series, s: S) -> Result<S::Ok, S::Error> {
        series_to_bytes(v).map_err(ser_err::<S>)?.serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<pl::Series, D::Error> {
        let bytes = Vec::<u8>::deserialize(d)?;
        series_from_bytes(&bytes).map_err(de_err::<D>)
    }
}

fn scalar_to_bytes(v: &pl::Scalar) -> Result<Vec<u8>, BoxError> {
    series_to_bytes(&v.clone().into_series("".into()))
}

fn scalar_from_bytes(bytes: &[u8]) -> Result<pl::Scalar, BoxError> {
    let s = series_from_bytes(bytes)?;
    if s.len() != 1 {
        return Err(format!("an encoded scalar holds {} values, not 1", s.len()).into());
    }
    Ok(pl::Scalar::new(s.dtype().clone(), s.get(0)?.into_static()))
}

/// `#[serde(with = "wire::opt_scalar")]` for an `Option<pl::Scalar>`.
pub(crate) mod opt_scalar {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        v: &Option<pl::Scalar>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let bytes = match v {
            Some(v) => Some(scalar_to_bytes(v).map_err(ser_err::<S>)?),
            None => None,
        };
        bytes.serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<pl::Scalar>, D::Error> {
        match Option::<Vec<u8>>::deserialize(d)? {
            Some(bytes) => Ok(Some(scalar_from_bytes(&bytes).map_err(de_err::<D>)?)),
            None => Ok(None),
        }
    }
}

/// The pieces of a shuffle split: a count, then each piece's length and
/// Arrow IPC bytes (all little-endian u64).
fn encode_pieces(v: &Value) -> Result<Vec<u8>, BoxError> {
    let pieces = v.downcast_ref::<Vec<pl::DataFrame>>()?;
    let mut out = Vec::new();
    out.extend_from_slice(&(pieces.len() as u64).to_le_bytes());
    for p in pieces {
        let bytes = encode_frame(p)?;
        out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(&bytes);
    }
    Ok(out)
}

fn take_u64(bytes: &mut &[u8]) -> Result<u64, BoxError> {
    if bytes.len() < 8 {
        return Err("truncated shuffle pieces: a length is cut short".into());
    }
    let (head, rest) = bytes.split_at(8);
    *bytes = rest;
    Ok(u64::from_le_bytes(head.try_into()?))
}

fn decode_pieces(mut bytes: &[u8]) -> Result<Value, BoxError> {
    let n = take_u64(&mut bytes)?;
    // Every piece takes at least its 8-byte length: bounds the allocation.
    if n > (bytes.len() / 8) as u64 {
        return Err(format!("shuffle pieces claim {n} frames in {} bytes", bytes.len()).into());
    }
    let mut pieces = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let len = take_u64(&mut bytes)?;
        if len > bytes.len() as u64 {
            return Err(format!(
                "truncated shuffle pieces: a frame of {len} bytes, {} left",
                bytes.len()
            )
            .into());
        }
        let (frame, rest) = bytes.split_at(len as usize);
        pieces.push(decode_frame(frame)?);
        bytes = rest;
    }
    if !bytes.is_empty() {
        return Err(format!("{} bytes after the last shuffle piece", bytes.len()).into());
    }
    Ok(Value::new(pieces))
}

dask_core::__private::inventory::submit! {
    CodecRegistration {
        tag: || "Vec<polars::DataFrame>/arrow-ipc",
        type_id: TypeId::of::<Vec<pl::DataFrame>>,
        encode: encode_pieces,
        decode: decode_pieces,
    }
}

fn encode_scalar(v: &Value) -> Result<Vec<u8>, BoxError> {
    scalar_to_bytes(v.downcast_ref::<pl::Scalar>()?)
}

fn decode_scalar(bytes: &[u8]) -> Result<Value, BoxError> {
    Ok(Value::new(scalar_from_bytes(bytes)?))
}

dask_core::__private::inventory::submit! {
    CodecRegistration {
        tag: || "polars::Scalar/arrow-ipc",
        type_id: TypeId::of::<pl::Scalar>,
        encode: encode_scalar,
        decode: decode_scalar,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dask_core::codec::{decode_value, encode_value};
    use polars::prelude::NamedFrom;

    #[derive(Serialize, Deserialize)]
    struct Params {
        #[serde(with = "schema")]
        schema: pl::SchemaRef,
        #[serde(with = "dtypes")]
        dtypes: Vec<DataType>,
        #[serde(with = "series")]
        values: pl::Series,
        #[serde(with = "opt_scalar")]
        bound: Option<pl::Scalar>,
    }

    #[test]
    fn polars_parameters_round_trip_through_postcard() {
        let schema: pl::Schema = [
            pl::Field::new("a".into(), DataType::Int64),
            pl::Field::new("s".into(), DataType::String),
            pl::Field::new(
                "t".into(),
                DataType::Datetime(pl::TimeUnit::Microseconds, None),
            ),
        ]
        .into_iter()
        .collect();
        let p = Params {
            schema: Arc::new(schema.clone()),
            dtypes: vec![DataType::Float64, DataType::UInt32, DataType::Boolean],
            values: pl::Series::new("v".into(), [3i32, 1, 2]),
            bound: Some(pl::Scalar::from(7.5f64)),
        };
        let bytes = postcard::to_allocvec(&p).unwrap();
        let q: Params = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(q.schema.as_ref(), &schema);
        assert_eq!(q.dtypes, p.dtypes);
        assert!(q.values.equals(&p.values));
        assert_eq!(q.bound, p.bound);
    }

    #[test]
    fn pieces_and_scalars_have_codecs_and_bad_bytes_are_errors() {
        let df = pl::df!("k" => [1i64, 2, 3], "x" => ["a", "b", "c"]).unwrap();
        let pieces = vec![df.slice(0, 2), df.clear(), df.slice(2, 1)];
        let (tag, bytes) = encode_value(&Value::new(pieces.clone())).unwrap();
        let back = decode_value(tag, &bytes).unwrap();
        let back = back.downcast_ref::<Vec<pl::DataFrame>>().unwrap();
        assert_eq!(back.len(), 3);
        for (a, b) in back.iter().zip(&pieces) {
            assert!(a.equals(b));
            assert_eq!(a.schema(), b.schema());
        }
        for cut in [0, 4, 12, bytes.len() - 1] {
            assert!(decode_value(tag, &bytes[..cut]).is_err(), "cut at {cut}");
        }
        let s = pl::Scalar::new(DataType::Int64, pl::AnyValue::Int64(-4));
        let (tag, bytes) = encode_value(&Value::new(s.clone())).unwrap();
        let back = decode_value(tag, &bytes).unwrap();
        assert_eq!(back.downcast_ref::<pl::Scalar>().unwrap(), &s);
        let null = pl::Scalar::new(DataType::Float64, pl::AnyValue::Null);
        let (tag, bytes) = encode_value(&Value::new(null.clone())).unwrap();
        assert_eq!(
            decode_value(tag, &bytes)
                .unwrap()
                .downcast_ref::<pl::Scalar>()
                .unwrap(),
            &null
        );
    }
}
