//! Chunks across processes: the codec of `ndarray::ArrayD<T>` for every
//! [`Element`] type, registered in dask-core's codec registry, so blocks can
//! move between `dask worker` processes and back to the client.
//!
//! The encoding is a raw buffer, not serde element by element:
//!
//! ```text
//! u32 LE  number of axes
//! u64 LE  length of each axis
//! ...     the elements in C order, little-endian (bool: one byte, 0 or 1)
//! ```
//!
//! Any layout encodes (transposed views, slices with steps): a standard-layout
//! array is copied as one slice, any other is walked in logical C order.
//! Decoding checks the header against the buffer length, so a truncated or
//! corrupt frame is a typed codec error, never a panic.
//!
//! [`serde_chunk`] gives the same encoding as a serde field attribute, for
//! partial results that hold arrays (`#[serde(with = "serde_chunk")]`).

use std::any::{type_name, TypeId};

use dask_core::codec::CodecRegistration;
use dask_core::{BoxError, Value};
use ndarray::{ArrayD, IxDyn};

use crate::element::Element;

/// Appends the encoding of `a` (header, then raw little-endian elements).
pub fn write_chunk<T: Element>(a: &ArrayD<T>, out: &mut Vec<u8>) {
    out.reserve(4 + 8 * a.ndim() + std::mem::size_of::<T>() * a.len());
    out.extend_from_slice(&(a.ndim() as u32).to_le_bytes());
    for &d in a.shape() {
        out.extend_from_slice(&(d as u64).to_le_bytes());
    }
    match a.as_slice() {
        Some(slice) => T::write_le_slice(slice, out),
        None => a.iter().for_each(|&x| x.write_le(out)),
    }
}

/// Encodes `a` into a new buffer; see [`write_chunk`].
pub fn encode_chunk<T: Element>(a: &ArrayD<T>) -> Vec<u8> {
    let mut out = Vec::new();
    write_chunk(a, &mut out);
    out
}

/// Decodes a buffer written by [`write_chunk`]. Errors name what does not fit:
/// a short header, an element count that overflows, a data length that does
/// not match the shape, or an invalid element (a bool byte other than 0/1).
pub fn decode_chunk<T: Element>(bytes: &[u8]) -> Result<ArrayD<T>, BoxError> {
    let short = || -> BoxError {
        format!(
            "an encoded {} chunk of {} bytes is too short for its header",
            T::DTYPE,
            bytes.len()
        )
        .into()
    };
    let ndim_bytes: [u8; 4] = bytes.get(..4).ok_or_else(short)?.try_into()?;
    let ndim = u32::from_le_bytes(ndim_bytes) as usize;
    let header = ndim
        .checked_mul(8)
        .and_then(|n| n.checked_add(4))
        .filter(|&n| n <= bytes.len())
        .ok_or_else(short)?;
    let shape: Vec<usize> = bytes[4..header]
        .chunks_exact(8)
        .map(|b| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            usize::try_from(u64::from_le_bytes(a))
        })
        .collect::<Result<_, _>>()?;
    let data = &bytes[header..];
    let expected = shape
        .iter()
        .try_fold(std::mem::size_of::<T>(), |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| -> BoxError { format!("shape {shape:?} overflows").into() })?;
    if data.len() != expected {
        return Err(format!(
            "an encoded {} chunk of shape {shape:?} needs {expected} data bytes, the buffer has {}",
            T::DTYPE,
            data.len()
        )
        .into());
    }
    let mut values = Vec::new();
    T::read_le_slice(data, &mut values)
        .ok_or_else(|| -> BoxError { format!("invalid {} element bytes", T::DTYPE).into() })?;
    Ok(ArrayD::from_shape_vec(IxDyn(&shape), values)?)
}

fn encode_value<T: Element>(v: &Value) -> Result<Vec<u8>, BoxError> {
    Ok(encode_chunk(v.downcast_ref::<ArrayD<T>>()?))
}

fn decode_value<T: Element>(bytes: &[u8]) -> Result<Value, BoxError> {
    Ok(Value::new(decode_chunk::<T>(bytes)?))
}

macro_rules! register_chunk_codecs {
    ($($t:ty),*) => {$(
        dask_core::__private::inventory::submit! {
            CodecRegistration {
                tag: || type_name::<ArrayD<$t>>(),
                type_id: || TypeId::of::<ArrayD<$t>>(),
                encode: encode_value::<$t>,
                decode: decode_value::<$t>,
            }
        }
    )*};
}
register_chunk_codecs!(f64, f32, i64, i32, bool);

/// `#[serde(with = "serde_chunk")]` for `ArrayD<T>` fields: the chunk's raw
/// encoding as one byte string.
pub mod serde_chunk {
    use std::marker::PhantomData;

    use ndarray::ArrayD;
    use serde::de::{Error as _, Visitor};
    use serde::{Deserializer, Serializer};

    use crate::element::Element;

    /// Serializes `a` as bytes.
    pub fn serialize<S: Serializer, T: Element>(a: &ArrayD<T>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&super::encode_chunk(a))
    }

    /// Deserializes an array written by [`serialize`].
    pub fn deserialize<'de, D: Deserializer<'de>, T: Element>(d: D) -> Result<ArrayD<T>, D::Error> {
        struct ChunkVisitor<T>(PhantomData<T>);
        impl<T: Element> Visitor<'_> for ChunkVisitor<T> {
            type Value = ArrayD<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "an encoded {} chunk", T::DTYPE)
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<ArrayD<T>, E> {
                super::decode_chunk(v).map_err(E::custom)
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<ArrayD<T>, E> {
                self.visit_bytes(&v)
            }
        }
        d.deserialize_bytes(ChunkVisitor(PhantomData))
            .map_err(|e| D::Error::custom(format!("chunk: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use dask_core::codec::{decode_value as decode, encode_value as encode};
    use ndarray::{Array, ArrayD, IxDyn, ShapeBuilder};

    use super::*;

    fn round_trip<T: Element + PartialEq>(a: &ArrayD<T>) {
        let (tag, bytes) = encode(&Value::new(a.clone())).unwrap();
        assert_eq!(tag, type_name::<ArrayD<T>>());
        let back = decode(tag, &bytes).unwrap();
        assert_eq!(back.downcast_ref::<ArrayD<T>>().unwrap(), a);
    }

    #[test]
    fn every_dtype_round_trips_through_the_registry() {
        let f = Array::from_shape_fn((3, 4), |(i, j)| i as f64 * 0.5 - j as f64).into_dyn();
        round_trip(&f);
        round_trip(&f.mapv(|x| x as f32));
        round_trip(&f.mapv(|x| ((x * 4.0) as i64 - 1) << 40));
        round_trip(&f.mapv(|x| x as i32));
        round_trip(&f.mapv(|x| x > 0.0));
        round_trip(&ArrayD::from_elem(IxDyn(&[]), f64::NAN.min(2.5)));
    }

    #[test]
    fn non_standard_layouts_and_empty_arrays() {
        let a =
            Array::from_shape_fn((5, 3, 2), |(i, j, k)| (i * 100 + j * 10 + k) as i64).into_dyn();
        // Transposed and stepped views encode in logical order.
        let t = a.view().reversed_axes().to_owned();
        assert!(!t.is_standard_layout());
        round_trip(&t);
        let stepped = a.slice(ndarray::s![..;2, .., 1..]).to_owned().into_dyn();
        round_trip(&stepped);
        let fortran = Array::from_shape_vec((2, 3).f(), vec![1.0f32, 2., 3., 4., 5., 6.]).unwrap();
        round_trip(&fortran.into_dyn());
        round_trip(&ArrayD::<f64>::zeros(IxDyn(&[0, 7])));
        round_trip(&ArrayD::<bool>::default(IxDyn(&[3, 0])));
        // Encoded bytes are exactly the header plus the C-order elements.
        let bytes = encode_chunk(&t);
        assert_eq!(bytes.len(), 4 + 3 * 8 + 30 * 8);
        let first = i64::from_le_bytes(bytes[28..36].try_into().unwrap());
        assert_eq!(first, t[[0, 0, 0]]);
    }

    #[test]
    fn corrupt_buffers_are_errors_not_panics() {
        let good = encode_chunk(&ArrayD::<i32>::zeros(IxDyn(&[2, 2])));
        for cut in [0, 3, 10, good.len() - 1] {
            let err = decode_chunk::<i32>(&good[..cut]).unwrap_err().to_string();
            assert!(
                err.contains("short") || err.contains("needs"),
                "{cut}: {err}"
            );
        }
        let mut huge = good.clone();
        huge[4..12].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode_chunk::<i32>(&huge).is_err());
        let mut bad_bool = encode_chunk(&ArrayD::from_elem(IxDyn(&[2]), true));
        *bad_bool.last_mut().unwrap() = 7;
        let err = decode_chunk::<bool>(&bad_bool).unwrap_err().to_string();
        assert!(err.contains("invalid bool"), "{err}");
        let via_registry = decode(type_name::<ArrayD<i32>>(), &good[..5]).unwrap_err();
        assert!(matches!(via_registry, dask_core::Error::Codec { .. }));
    }

    proptest::proptest! {
        /// Any shape (lengths 0 to 4, up to 4 axes), seen through any axis
        /// permutation and a step, round-trips exactly in logical order.
        #[test]
        fn any_layout_round_trips(
            shape in proptest::collection::vec(0usize..5, 0..=4),
            seed in proptest::prelude::any::<u64>(),
            rotate in 0usize..4,
            stride in 1isize..3,
        ) {
            let n: usize = shape.iter().product();
            let a = ArrayD::from_shape_vec(
                IxDyn(&shape),
                (0..n as u64).map(|i| (i ^ seed) as i64).collect(),
            )
            .unwrap();
            let mut perm: Vec<usize> = (0..shape.len()).collect();
            if !perm.is_empty() {
                let k = rotate % perm.len();
                perm.rotate_left(k);
            }
            let view = a.view().permuted_axes(perm);
            let view = view.slice_each_axis(|_| ndarray::Slice::new(0, None, stride));
            let owned = view.to_owned();
            let back = decode_chunk::<i64>(&encode_chunk(&owned)).unwrap();
            proptest::prop_assert_eq!(&back, &owned);
            let f = owned.mapv(|v| v as f64 / 3.0);
            proptest::prop_assert_eq!(decode_chunk::<f64>(&encode_chunk(&f)).unwrap(), f);
            let b = owned.mapv(|v| v % 2 == 0);
            proptest::prop_assert_eq!(decode_chunk::<bool>(&encode_chunk(&b)).unwrap(), b);
        }
    }

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Part {
        n: f64,
        #[serde(with = "serde_chunk")]
        a: ArrayD<i64>,
    }

    #[test]
    fn serde_field_encoding() {
        let p = Part {
            n: 3.0,
            a: Array::from_shape_fn((2, 3), |(i, j)| (i * 3 + j) as i64).into_dyn(),
        };
        let bytes = postcard::to_allocvec(&p).unwrap();
        assert_eq!(postcard::from_bytes::<Part>(&bytes).unwrap(), p);
        assert!(postcard::from_bytes::<Part>(&bytes[..bytes.len() - 1]).is_err());
    }
}
