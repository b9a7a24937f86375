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
//!
//! Numeric chunks also have a split encoding (dask-core's `Parts`): the
//! header as meta part and the elements as data part, which for a
//! standard-layout chunk on a little-endian host is the chunk's own buffer
//! (sending a chunk copies nothing before the socket), and an in-place
//! receiver that reads the elements straight into the new chunk's `Vec`.
//! Decoding checks the header against the buffer length, so a truncated or
//! corrupt frame is a typed codec error, never a panic.
//!
//! [`serde_chunk`] gives the same encoding as a serde field attribute, for
//! partial results that hold arrays (`#[serde(with = "serde_chunk")]`).

use std::any::{type_name, TypeId};

use bytes::Bytes;
use dask_core::codec::{CodecRegistration, DataSink, Parts, PartsCodecRegistration};
use dask_core::{BoxError, Value};
use ndarray::{ArrayD, IxDyn};

use crate::element::Element;

/// Appends the encoding of `a` (header, then raw little-endian elements).
pub fn write_chunk<T: Element>(a: &ArrayD<T>, out: &mut Vec<u8>) {
    out.reserve(4 + 8 * a.ndim() + std::mem::size_of::<T>() * a.len());
    write_header(a, out);
    write_elements(a, out);
}

/// Appends the header: the number of axes and their lengths.
fn write_header<T>(a: &ArrayD<T>, out: &mut Vec<u8>) {
    out.extend_from_slice(&(a.ndim() as u32).to_le_bytes());
    for &d in a.shape() {
        out.extend_from_slice(&(d as u64).to_le_bytes());
    }
}

/// Appends the elements in logical C order, little-endian.
fn write_elements<T: Element>(a: &ArrayD<T>, out: &mut Vec<u8>) {
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

/// Parses the header at the front of `bytes`: the shape, the header's length
/// and the number of data bytes the shape needs (checked for overflow).
fn read_header<T: Element>(bytes: &[u8]) -> Result<(Vec<usize>, usize, usize), BoxError> {
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
    let expected = shape
        .iter()
        .try_fold(std::mem::size_of::<T>(), |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| -> BoxError { format!("shape {shape:?} overflows").into() })?;
    Ok((shape, header, expected))
}

fn wrong_length<T: Element>(shape: &[usize], expected: usize, got: usize) -> BoxError {
    format!(
        "an encoded {} chunk of shape {shape:?} needs {expected} data bytes, the buffer has {got}",
        T::DTYPE,
    )
    .into()
}

/// Decodes a buffer written by [`write_chunk`]. Errors name what does not fit:
/// a short header, an element count that overflows, a data length that does
/// not match the shape, or an invalid element (a bool byte other than 0/1).
pub fn decode_chunk<T: Element>(bytes: &[u8]) -> Result<ArrayD<T>, BoxError> {
    let (shape, header, expected) = read_header::<T>(bytes)?;
    let data = &bytes[header..];
    if data.len() != expected {
        return Err(wrong_length::<T>(&shape, expected, data.len()));
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

/// Plain numbers whose memory is their little-endian encoding on a
/// little-endian host: no padding, no invalid bit pattern. (Not `bool`: a
/// byte other than 0 or 1 is not a `bool`, so its buffer cannot be filled
/// with bytes from a socket.)
trait Raw: Element {}
impl Raw for f64 {}
impl Raw for f32 {}
impl Raw for i64 {}
impl Raw for i32 {}

/// The memory of `values`.
fn as_bytes<T: Raw>(values: &[T]) -> &[u8] {
    #[allow(unsafe_code)]
    // SAFETY: `Raw` types have no padding, so all `size_of_val(values)`
    // bytes behind the pointer are initialized; `u8` has alignment 1; the
    // borrow keeps `values` alive and unchanged as long as the result.
    unsafe {
        std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), std::mem::size_of_val(values))
    }
}

/// The memory of `values`, writable.
fn as_bytes_mut<T: Raw>(values: &mut [T]) -> &mut [u8] {
    #[allow(unsafe_code)]
    // SAFETY: as `as_bytes`, and every byte pattern written through the
    // result leaves a valid `Raw` value (no invalid bit patterns); the
    // exclusive borrow makes this the only access meanwhile.
    unsafe {
        std::slice::from_raw_parts_mut(
            values.as_mut_ptr().cast::<u8>(),
            std::mem::size_of_val(values),
        )
    }
}

/// A chunk held by a value, seen as its encoded elements: the data part of
/// a standard-layout chunk on a little-endian host, shared, not copied.
struct SharedChunk<T>(std::sync::Arc<ArrayD<T>>);

impl<T: Raw> AsRef<[u8]> for SharedChunk<T> {
    fn as_ref(&self) -> &[u8] {
        // Only built for standard layouts (`as_slice` is `Some`).
        self.0.as_slice().map_or(&[], as_bytes)
    }
}

/// The split encoding: the header as meta part, the elements as data part,
/// which is the chunk's own buffer when its layout is standard and the host
/// little-endian (a copy in logical C order otherwise).
fn encode_parts<T: Raw>(v: &Value) -> Result<Parts, BoxError> {
    let a = v.downcast_ref::<ArrayD<T>>()?;
    let mut meta = Vec::with_capacity(4 + 8 * a.ndim());
    write_header(a, &mut meta);
    let data = if cfg!(target_endian = "little") && a.as_slice().is_some() {
        Bytes::from_owner(SharedChunk(v.clone().downcast_arc::<ArrayD<T>>()?))
    } else {
        let mut out = Vec::with_capacity(std::mem::size_of::<T>() * a.len());
        write_elements(a, &mut out);
        Bytes::from(out)
    };
    Ok(Parts { meta, data })
}

/// Receives a chunk's elements straight into its `Vec<T>`.
struct ChunkSink<T> {
    shape: Vec<usize>,
    values: Vec<T>,
}

impl<T: Raw> DataSink for ChunkSink<T> {
    fn buffer(&mut self) -> &mut [u8] {
        as_bytes_mut(&mut self.values)
    }

    fn finish(self: Box<Self>) -> Result<Value, BoxError> {
        let ChunkSink { shape, mut values } = *self;
        if cfg!(target_endian = "big") {
            // The bytes are little-endian: swap them into place.
            let bytes = as_bytes(&values).to_vec();
            values.clear();
            T::read_le_slice(&bytes, &mut values)
                .ok_or_else(|| -> BoxError { format!("invalid {} elements", T::DTYPE).into() })?;
        }
        Ok(Value::new(ArrayD::from_shape_vec(IxDyn(&shape), values)?))
    }
}

/// A [`ChunkSink`] when `meta` is exactly a header (other splits of the
/// encoding go to the plain decoder) and `len` the data length its shape
/// needs (an error otherwise, before anything is allocated).
fn chunk_sink<T: Raw>(meta: &[u8], len: usize) -> Result<Option<Box<dyn DataSink>>, BoxError> {
    let Ok((shape, header, expected)) = read_header::<T>(meta) else {
        return Ok(None);
    };
    if header != meta.len() {
        return Ok(None);
    }
    if len != expected {
        return Err(wrong_length::<T>(&shape, expected, len));
    }
    // Zeroed: a fresh block straight from the system, no pass over it.
    let values = vec![T::default(); expected / std::mem::size_of::<T>()];
    Ok(Some(Box::new(ChunkSink { shape, values })))
}

macro_rules! register_chunk_parts {
    ($($t:ty),*) => {$(
        dask_core::__private::inventory::submit! {
            PartsCodecRegistration {
                type_id: || TypeId::of::<ArrayD<$t>>(),
                encode: encode_parts::<$t>,
                sink: chunk_sink::<$t>,
            }
        }
    )*};
}
register_chunk_parts!(f64, f32, i64, i32);

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

/// The bytes a chunk holds: its elements and the array's header. Registered
/// so a worker sizes an array result without encoding it.
fn chunk_sizeof<T>(a: &ArrayD<T>) -> u64 {
    (a.len() * std::mem::size_of::<T>() + std::mem::size_of::<ArrayD<T>>()) as u64
}

dask_core::register_sizeof!(ArrayD<f64>, chunk_sizeof);
dask_core::register_sizeof!(ArrayD<f32>, chunk_sizeof);
dask_core::register_sizeof!(ArrayD<i64>, chunk_sizeof);
dask_core::register_sizeof!(ArrayD<i32>, chunk_sizeof);
dask_core::register_sizeof!(ArrayD<bool>, chunk_sizeof);

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
    use dask_core::codec::{self, decode_value as decode, encode_value as encode};
    use ndarray::{Array, ArrayD, IxDyn, ShapeBuilder};

    use super::*;

    /// Every chunk type is sized from its buffer, with no encoding: within a
    /// header of the encoding's length.
    #[test]
    fn chunks_are_sized_without_encoding() {
        use dask_core::sizeof::{has_sizeof, sizeof_registered};
        fn check<T: Element>(a: ArrayD<T>) {
            let v = Value::new(a.clone());
            assert!(has_sizeof(&v), "{}", type_name::<T>());
            let size = sizeof_registered(&v).unwrap();
            let data = (a.len() * std::mem::size_of::<T>()) as u64;
            assert!(size >= data && size < data + 256, "{size} for {data}");
            let encoded = encode(&v).unwrap().1.len() as u64;
            assert!(size.abs_diff(encoded) < 256, "{size} vs encoded {encoded}");
        }
        check(ArrayD::<f64>::zeros(IxDyn(&[30, 40])));
        check(ArrayD::<f32>::zeros(IxDyn(&[7])));
        check(ArrayD::<i64>::zeros(IxDyn(&[2, 3, 4])));
        check(ArrayD::<i32>::zeros(IxDyn(&[0, 5])));
        check(ArrayD::from_elem(IxDyn(&[9, 9]), true));
    }

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

    /// Plain and split encodings both round-trip.
    fn both_round_trip<T: Element + PartialEq>(a: &ArrayD<T>) -> Parts {
        round_trip(a);
        parts_round_trip(a)
    }

    #[test]
    fn non_standard_layouts_and_empty_arrays() {
        let a =
            Array::from_shape_fn((5, 3, 2), |(i, j, k)| (i * 100 + j * 10 + k) as i64).into_dyn();
        // Transposed and stepped views encode in logical order.
        let t = a.view().reversed_axes().to_owned();
        assert!(!t.is_standard_layout());
        both_round_trip(&t);
        let stepped = a.slice(ndarray::s![..;2, .., 1..]).to_owned().into_dyn();
        both_round_trip(&stepped);
        let fortran = Array::from_shape_vec((2, 3).f(), vec![1.0f32, 2., 3., 4., 5., 6.]).unwrap();
        both_round_trip(&fortran.into_dyn());
        both_round_trip(&ArrayD::<f64>::zeros(IxDyn(&[0, 7])));
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
            parts_round_trip(&owned);
            parts_round_trip(&f);
            proptest::prop_assert_eq!(decode_chunk::<f64>(&encode_chunk(&f)).unwrap(), f);
            let b = owned.mapv(|v| v % 2 == 0);
            proptest::prop_assert_eq!(decode_chunk::<bool>(&encode_chunk(&b)).unwrap(), b);
        }
    }

    /// Through the split encoding: the parts join to the plain encoding and
    /// decode back, by copy and through the in-place receiver.
    fn parts_round_trip<T: Element + PartialEq>(a: &ArrayD<T>) -> Parts {
        let v = Value::new(a.clone());
        let (tag, parts) = codec::encode_parts(&v).unwrap();
        let (_, plain) = encode(&v).unwrap();
        assert_eq!([&parts.meta[..], &parts.data[..]].concat(), plain);
        let back = codec::decode_parts(tag, &parts.meta, &parts.data).unwrap();
        assert_eq!(back.downcast_ref::<ArrayD<T>>().unwrap(), a);
        if let Some(mut sink) = codec::data_sink(tag, &parts.meta, parts.data.len()).unwrap() {
            sink.buffer().copy_from_slice(&parts.data);
            let back = codec::finish_sink(tag, sink).unwrap();
            assert_eq!(back.downcast_ref::<ArrayD<T>>().unwrap(), a);
        }
        parts
    }

    #[test]
    fn standard_layout_chunks_are_sent_from_their_own_buffer() {
        let a = Array::from_shape_fn((4, 5), |(i, j)| i as f64 * 10.0 + j as f64).into_dyn();
        let v = Value::new(a);
        let (tag, parts) = codec::encode_parts(&v).unwrap();
        let held = v.downcast_ref::<ArrayD<f64>>().unwrap();
        assert_eq!(parts.meta.len(), 4 + 2 * 8);
        if cfg!(target_endian = "little") {
            assert_eq!(parts.data.as_ptr(), held.as_ptr().cast::<u8>(), "no copy");
        }
        drop(v); // the data part keeps the chunk alive
        let back = codec::decode_parts(tag, &parts.meta, &parts.data).unwrap();
        assert_eq!(back.downcast_ref::<ArrayD<f64>>().unwrap()[[3, 4]], 34.0);
        for dtype_case in [
            parts_round_trip(&Array::from_shape_fn((3, 2), |(i, j)| (i * 2 + j) as f32).into_dyn()),
            parts_round_trip(&Array::from_shape_fn(7, |i| i as i64 - 3).into_dyn()),
            parts_round_trip(&Array::from_shape_fn((1, 1, 2), |(_, _, k)| k as i32).into_dyn()),
        ] {
            assert!(!dtype_case.meta.is_empty());
        }
    }

    #[test]
    fn offset_and_0_d_chunks_and_bools_in_parts() {
        let mut sliced = Array::from_shape_fn((4, 4), |(i, j)| (i * 4 + j) as f64).into_dyn();
        sliced.slice_collapse(ndarray::s![1..3, ..]); // standard, not at the start of its Vec
        assert!(sliced.is_standard_layout());
        parts_round_trip(&sliced);
        parts_round_trip(&ArrayD::from_elem(IxDyn(&[]), 2.5f64));
        // Bool chunks have no split encoding: the plain one, whole, as data.
        let b = parts_round_trip(&ArrayD::from_elem(IxDyn(&[3]), true));
        assert!(b.meta.is_empty());
    }

    #[test]
    fn wrong_lengths_and_odd_splits_of_parts_are_typed_errors() {
        let a = Array::from_shape_fn((2, 3), |(i, j)| (i + j) as f64).into_dyn();
        let v = Value::new(a.clone());
        let (tag, parts) = codec::encode_parts(&v).unwrap();
        let (_, plain) = encode(&v).unwrap();
        // A data part of the wrong length: refused before any allocation.
        for len in [0, 47, 49, usize::MAX] {
            let err = codec::data_sink(tag, &parts.meta, len)
                .map(|_| ())
                .unwrap_err();
            assert!(matches!(err, dask_core::Error::Codec { .. }), "{err}");
            assert!(err.to_string().contains("needs 48 data bytes"), "{err}");
        }
        let err = codec::decode_parts(tag, &parts.meta, &parts.data[..47]).unwrap_err();
        assert!(err.to_string().contains("needs 48"), "{err}");
        // Other splits of the plain encoding (a spilled file sent whole, a
        // cut inside the header) decode through the plain decoder.
        for at in [0, 1, 4, 19, 21, plain.len()] {
            assert!(codec::data_sink(tag, &plain[..at], plain.len() - at)
                .unwrap()
                .is_none());
            let back = codec::decode_parts(tag, &plain[..at], &plain[at..]).unwrap();
            assert_eq!(back.downcast_ref::<ArrayD<f64>>().unwrap(), &a, "{at}");
        }
        // Truncated encodings, however split, are codec errors.
        for cut in [0, 3, 10, plain.len() - 1] {
            for at in [0, cut / 2, cut] {
                let err = codec::decode_parts(tag, &plain[..at], &plain[at..cut]).unwrap_err();
                assert!(
                    matches!(err, dask_core::Error::Codec { .. }),
                    "{cut} {at}: {err}"
                );
            }
        }
        // A header whose shape overflows is no sink and no panic.
        let mut huge = parts.meta.clone();
        huge[4..12].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(codec::decode_parts(tag, &huge, &parts.data).is_err());
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
