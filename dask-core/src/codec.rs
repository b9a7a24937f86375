//! Codecs: how values of a type cross a process boundary.
//!
//! A type gets a codec with [`register_codec!`](crate::register_codec) (serde +
//! postcard) or by submitting a [`CodecRegistration`] with its own encoder
//! (ndarray chunks as raw buffers, dataframes as Arrow IPC). Values are found
//! by `TypeId`, decoded by tag. Common std types are registered here.
//!
//! A codec may also submit a [`PartsCodecRegistration`] for large values: the
//! encoding split in a small *meta* part and a *data* part that can share
//! the value's own buffer ([`encode_parts`]: nothing is copied before a
//! socket write), and a [`DataSink`] that receives the data part in the
//! value's final buffer ([`data_sink`]: a frame read from a socket becomes
//! the value without a second copy). `meta ++ data` is always exactly the
//! bytes [`encode_value`] gives, so either side may use either path.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;

use crate::{BoxError, Error, Result, Value};

/// Encodes a value (known to hold the registered type) to bytes.
pub type EncodeFn = fn(&Value) -> Result<Vec<u8>, BoxError>;
/// Decodes bytes to a value of the registered type.
pub type DecodeFn = fn(&[u8]) -> Result<Value, BoxError>;

/// One registered codec.
pub struct CodecRegistration {
    /// The tag sent with encoded values (by convention the type's name).
    pub tag: fn() -> &'static str,
    /// The `TypeId` of the type.
    pub type_id: fn() -> TypeId,
    /// Encoder.
    pub encode: EncodeFn,
    /// Decoder.
    pub decode: DecodeFn,
}

inventory::collect!(CodecRegistration);

/// A value's encoding in two parts: `meta ++ data` is the encoding
/// [`encode_value`] gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parts {
    /// The small leading part (for arrays: dtype-independent shape header).
    pub meta: Vec<u8>,
    /// The bulk; it may borrow the value's own buffer (`Bytes::from_owner`).
    pub data: Bytes,
}

/// Receives the data part of a value in place: the bytes are written into
/// [`DataSink::buffer`] (the value's final buffer), then
/// [`DataSink::finish`] builds the value without copying them again.
pub trait DataSink: Send {
    /// The buffer to fill: exactly as long as the data part announced.
    fn buffer(&mut self) -> &mut [u8];

    /// The value, once the whole buffer holds the data part. Errors: bytes
    /// that are not a valid encoding.
    fn finish(self: Box<Self>) -> Result<Value, BoxError>;
}

/// Encodes a value (known to hold the registered type) in [`Parts`].
pub type EncodePartsFn = fn(&Value) -> Result<Parts, BoxError>;
/// A [`DataSink`] for a data part of `len` bytes described by `meta`.
/// `Ok(None)`: a split this receiver does not take (e.g. an empty meta part
/// and the whole plain encoding as data, as a spilled value's file is sent),
/// to be decoded by the plain decoder. Errors: a meta part that does not
/// parse, or a length that does not fit it; nothing is allocated then.
pub type DataSinkFn = fn(meta: &[u8], len: usize) -> Result<Option<Box<dyn DataSink>>, BoxError>;

/// The split encoding of a type that also has a [`CodecRegistration`]
/// (joined by `TypeId`; the tag is that registration's).
pub struct PartsCodecRegistration {
    /// The `TypeId` of the type.
    pub type_id: fn() -> TypeId,
    /// Split encoder: `meta ++ data` must equal the plain encoder's bytes.
    pub encode: EncodePartsFn,
    /// In-place receiver of the data part.
    pub sink: DataSinkFn,
}

inventory::collect!(PartsCodecRegistration);

struct Codecs {
    by_type: HashMap<TypeId, &'static CodecRegistration>,
    by_tag: HashMap<&'static str, &'static CodecRegistration>,
    /// Split encodings by type, with the tag of the type's plain codec.
    parts_by_type: HashMap<TypeId, (&'static str, &'static PartsCodecRegistration)>,
    parts_by_tag: HashMap<&'static str, &'static PartsCodecRegistration>,
}

fn codecs() -> &'static Codecs {
    static CODECS: OnceLock<Codecs> = OnceLock::new();
    CODECS.get_or_init(|| {
        let mut c = Codecs {
            by_type: HashMap::new(),
            by_tag: HashMap::new(),
            parts_by_type: HashMap::new(),
            parts_by_tag: HashMap::new(),
        };
        for reg in inventory::iter::<CodecRegistration> {
            c.by_type.insert((reg.type_id)(), reg);
            c.by_tag.insert((reg.tag)(), reg);
        }
        for parts in inventory::iter::<PartsCodecRegistration> {
            // A split encoding without a plain codec has no tag: ignored.
            if let Some(reg) = c.by_type.get(&(parts.type_id)()) {
                c.parts_by_type
                    .insert((parts.type_id)(), ((reg.tag)(), parts));
                c.parts_by_tag.insert((reg.tag)(), parts);
            }
        }
        c
    })
}

/// Whether values of `value`'s type can be encoded.
pub fn has_codec(value: &Value) -> bool {
    codecs().by_type.contains_key(&value.value_type_id())
}

/// Encodes a value: its codec's tag and the bytes.
///
/// Errors: [`Error::NoCodec`] naming the type and how to register it.
pub fn encode_value(value: &Value) -> Result<(&'static str, Vec<u8>)> {
    let reg = codecs()
        .by_type
        .get(&value.value_type_id())
        .ok_or_else(|| Error::NoCodec {
            type_name: value.type_name(),
        })?;
    let tag = (reg.tag)();
    let bytes = (reg.encode)(value).map_err(codec_error(tag))?;
    Ok((tag, bytes))
}

/// Decodes bytes encoded by [`encode_value`] under `tag`.
pub fn decode_value(tag: &str, bytes: &[u8]) -> Result<Value> {
    let reg = codecs()
        .by_tag
        .get(tag)
        .ok_or_else(|| Error::UnknownCodec {
            tag: tag.to_owned(),
        })?;
    (reg.decode)(bytes).map_err(codec_error(tag))
}

/// Encodes a value in [`Parts`]: with its type's split encoding when it
/// has one (the data part may then share the value's buffer), else the
/// plain encoding as the data part after an empty meta part.
///
/// Errors: as [`encode_value`].
pub fn encode_parts(value: &Value) -> Result<(&'static str, Parts)> {
    let c = codecs();
    let Some(&(tag, parts)) = c.parts_by_type.get(&value.value_type_id()) else {
        let (tag, bytes) = encode_value(value)?;
        return Ok((
            tag,
            Parts {
                meta: Vec::new(),
                data: Bytes::from(bytes),
            },
        ));
    };
    let encoded = (parts.encode)(value).map_err(codec_error(tag))?;
    Ok((tag, encoded))
}

/// A [`DataSink`] for the data part (`len` bytes) of a value encoded under
/// `tag` whose meta part is `meta`. `Ok(None)`: the codec has no in-place
/// receiver, or not for this split; decode those with [`decode_parts`].
///
/// Errors: [`Error::UnknownCodec`]; [`Error::Codec`] when `meta` does not
/// parse or `len` does not fit it (nothing of `len` is allocated then).
pub fn data_sink(tag: &str, meta: &[u8], len: usize) -> Result<Option<Box<dyn DataSink>>> {
    let c = codecs();
    if !c.by_tag.contains_key(tag) {
        return Err(Error::UnknownCodec {
            tag: tag.to_owned(),
        });
    }
    let Some(parts) = c.parts_by_tag.get(tag) else {
        return Ok(None);
    };
    let codec_error = codec_error(tag);
    match (parts.sink)(meta, len).map_err(&codec_error)? {
        Some(mut sink) => {
            let held = sink.buffer().len();
            if held != len {
                return Err(codec_error(
                    format!("the codec's sink holds {held} bytes for a data part of {len}").into(),
                ));
            }
            Ok(Some(sink))
        }
        None => Ok(None),
    }
}

/// Finishes a [`DataSink`] filled with a data part: the value, or a codec
/// error under `tag`.
pub fn finish_sink(tag: &str, sink: Box<dyn DataSink>) -> Result<Value> {
    sink.finish().map_err(codec_error(tag))
}

/// Decodes a value from its two [`Parts`] (as [`encode_parts`] made them,
/// or any split of [`encode_value`]'s bytes): one copy of `data` into the
/// value's buffer when the codec has a [`DataSink`] for this split, else the
/// plain decoder (on `data` alone when `meta` is empty, on the joined parts
/// otherwise).
///
/// Errors: as [`decode_value`].
pub fn decode_parts(tag: &str, meta: &[u8], data: &[u8]) -> Result<Value> {
    if let Some(mut sink) = data_sink(tag, meta, data.len())? {
        sink.buffer().copy_from_slice(data); // same length: checked by data_sink
        return finish_sink(tag, sink);
    }
    if meta.is_empty() {
        return decode_value(tag, data);
    }
    let mut joined = Vec::with_capacity(meta.len() + data.len());
    joined.extend_from_slice(meta);
    joined.extend_from_slice(data);
    decode_value(tag, &joined)
}

/// Wraps a codec's error as [`Error::Codec`] under `tag`.
fn codec_error(tag: &str) -> impl Fn(BoxError) -> Error + '_ {
    move |source| Error::Codec {
        tag: tag.to_owned(),
        source,
    }
}

/// Encodes a `T` with postcard; used by [`register_codec!`](crate::register_codec).
pub fn postcard_encode<T: serde::Serialize + 'static>(value: &Value) -> Result<Vec<u8>, BoxError> {
    let v = value.downcast_ref::<T>()?;
    Ok(postcard::to_allocvec(v)?)
}

/// Decodes a `T` with postcard; used by [`register_codec!`](crate::register_codec).
pub fn postcard_decode<T: serde::de::DeserializeOwned + Send + Sync + 'static>(
    bytes: &[u8],
) -> Result<Value, BoxError> {
    Ok(Value::new(postcard::from_bytes::<T>(bytes)?))
}

/// Registers a serde codec (postcard) for a type, so its values can travel to
/// other processes. The tag is the type's name.
///
/// ```
/// #[derive(Clone, serde::Serialize, serde::Deserialize, PartialEq, Debug)]
/// struct Point { x: f64, y: f64 }
/// dask_core::register_codec!(Point);
///
/// let v = dask_core::Value::new(Point { x: 1.0, y: 2.0 });
/// let (tag, bytes) = dask_core::codec::encode_value(&v).unwrap();
/// let back = dask_core::codec::decode_value(tag, &bytes).unwrap();
/// assert_eq!(back.downcast_ref::<Point>().unwrap(), &Point { x: 1.0, y: 2.0 });
/// ```
#[macro_export]
macro_rules! register_codec {
    ($t:ty) => {
        $crate::__private::inventory::submit! {
            $crate::codec::CodecRegistration {
                tag: || ::std::any::type_name::<$t>(),
                type_id: || ::std::any::TypeId::of::<$t>(),
                encode: $crate::codec::postcard_encode::<$t>,
                decode: $crate::codec::postcard_decode::<$t>,
            }
        }
    };
}

register_codec!(bool);
register_codec!(i8);
register_codec!(i16);
register_codec!(i32);
register_codec!(i64);
register_codec!(u8);
register_codec!(u16);
register_codec!(u32);
register_codec!(u64);
register_codec!(usize);
register_codec!(isize);
register_codec!(f32);
register_codec!(f64);
register_codec!(char);
register_codec!(());
register_codec!(String);
register_codec!(Vec<bool>);
register_codec!(Vec<String>);
register_codec!(Option<i64>);
register_codec!(Option<f64>);
register_codec!(Option<String>);
register_codec!((i64, i64));
register_codec!((f64, f64));
register_codec!((String, i64));
register_codec!((String, u64));
register_codec!(Vec<(String, u64)>);
register_codec!(Vec<(String, i64)>);
// Shapes, indices and slice bounds: the literal arguments of collection tasks.
register_codec!(Vec<usize>);
register_codec!((usize, usize));
register_codec!((Vec<usize>, Vec<usize>));
register_codec!(Vec<(usize, usize)>);
register_codec!(Vec<(isize, isize, isize)>);
register_codec!(std::path::PathBuf);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_types_round_trip() {
        for v in [
            Value::new(42i64),
            Value::new(String::from("hé")),
            Value::new(vec![1.5f64, -2.0]),
        ] {
            let (tag, bytes) = encode_value(&v).unwrap();
            let back = decode_value(tag, &bytes).unwrap();
            assert_eq!(back.type_name(), v.type_name());
        }
        let (tag, bytes) =
            encode_value(&Value::new(vec![String::from("a"), String::from("b")])).unwrap();
        let back = decode_value(tag, &bytes).unwrap();
        assert_eq!(back.downcast_ref::<Vec<String>>().unwrap(), &["a", "b"]);
    }

    #[test]
    fn missing_codec_and_unknown_tag_are_typed_errors() {
        struct Opaque;
        let err = encode_value(&Value::new(Opaque)).unwrap_err();
        assert!(matches!(err, Error::NoCodec { .. }), "{err}");
        assert!(err.to_string().contains("register_codec!"), "{err}");
        assert!(matches!(
            decode_value("no-such-tag", &[]),
            Err(Error::UnknownCodec { .. })
        ));
        let err = decode_value(std::any::type_name::<i64>(), &[0xff]).unwrap_err();
        assert!(matches!(err, Error::Codec { .. }), "{err}");
    }
}

/// Numbers whose vectors travel as raw little-endian bytes: one pass each
/// way, not serde's element-by-element sequence (which moved a `Vec<u8>` at
/// about 2 ns per byte, several times slower than the socket).
trait RawElement: Copy + Send + Sync + 'static {
    const SIZE: usize;
    fn put(self, out: &mut [u8]);
    fn get(bytes: &[u8]) -> Self;
}

macro_rules! raw_elements {
    ($($t:ty),*) => {$(
        impl RawElement for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            fn put(self, out: &mut [u8]) {
                out.copy_from_slice(&self.to_le_bytes());
            }
            fn get(bytes: &[u8]) -> Self {
                let mut a = [0u8; std::mem::size_of::<$t>()];
                a.copy_from_slice(bytes);
                <$t>::from_le_bytes(a)
            }
        }
        inventory::submit! {
            CodecRegistration {
                tag: || std::any::type_name::<Vec<$t>>(),
                type_id: || TypeId::of::<Vec<$t>>(),
                encode: raw_encode::<$t>,
                decode: raw_decode::<$t>,
            }
        }
    )*};
}
raw_elements!(i32, i64, u32, u64, f32, f64);

fn raw_encode<T: RawElement>(value: &Value) -> Result<Vec<u8>, BoxError> {
    let v = value.downcast_ref::<Vec<T>>()?;
    let mut out = vec![0u8; v.len() * T::SIZE];
    for (chunk, &x) in out.chunks_exact_mut(T::SIZE).zip(v) {
        x.put(chunk);
    }
    Ok(out)
}

fn raw_decode<T: RawElement>(bytes: &[u8]) -> Result<Value, BoxError> {
    if !bytes.len().is_multiple_of(T::SIZE) {
        return Err(format!(
            "{} bytes are not a whole number of {}-byte {} elements",
            bytes.len(),
            T::SIZE,
            std::any::type_name::<T>()
        )
        .into());
    }
    let v: Vec<T> = bytes.chunks_exact(T::SIZE).map(T::get).collect();
    Ok(Value::new(v))
}

inventory::submit! {
    CodecRegistration {
        tag: || std::any::type_name::<Vec<u8>>(),
        type_id: || TypeId::of::<Vec<u8>>(),
        encode: |value| Ok(value.downcast_ref::<Vec<u8>>()?.clone()),
        decode: |bytes| Ok(Value::new(bytes.to_vec())),
    }
}

/// A shared `Vec<u8>` seen as bytes: the data part of a byte vector is the
/// vector itself, not a copy.
struct SharedBytes(std::sync::Arc<Vec<u8>>);

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Receives a byte vector in place: any split of its bytes (the meta part is
/// copied to the front, the data part is read behind it).
struct ByteSink {
    bytes: Vec<u8>,
    at: usize,
}

impl DataSink for ByteSink {
    fn buffer(&mut self) -> &mut [u8] {
        &mut self.bytes[self.at..]
    }

    fn finish(self: Box<Self>) -> Result<Value, BoxError> {
        Ok(Value::new(self.bytes))
    }
}

inventory::submit! {
    PartsCodecRegistration {
        type_id: || TypeId::of::<Vec<u8>>(),
        encode: |value| {
            let shared = value.clone().downcast_arc::<Vec<u8>>()?;
            Ok(Parts {
                meta: Vec::new(),
                data: Bytes::from_owner(SharedBytes(shared)),
            })
        },
        sink: |meta, len| {
            let total = meta
                .len()
                .checked_add(len)
                .ok_or("a byte vector longer than memory")?;
            let mut bytes = vec![0u8; total];
            bytes[..meta.len()].copy_from_slice(meta);
            Ok(Some(Box::new(ByteSink {
                bytes,
                at: meta.len(),
            })))
        },
    }
}

#[cfg(test)]
mod raw_tests {
    use super::*;

    fn round_trip<T>(v: Vec<T>)
    where
        T: Clone + PartialEq + std::fmt::Debug + Send + Sync + 'static,
    {
        let (tag, bytes) = encode_value(&Value::new(v.clone())).unwrap();
        let back = decode_value(tag, &bytes).unwrap();
        assert_eq!(back.downcast_ref::<Vec<T>>().unwrap(), &v);
    }

    #[test]
    fn vectors_of_numbers_round_trip_as_raw_bytes() {
        round_trip((0..1000u32).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
        round_trip(vec![i32::MIN, -1, 0, 1, i32::MAX]);
        round_trip(vec![i64::MIN, -7, 0, i64::MAX]);
        round_trip(vec![0u32, 1, u32::MAX]);
        round_trip(vec![0u64, 1 << 40, u64::MAX]);
        round_trip(vec![-0.5f32, 1e30, f32::INFINITY]);
        round_trip(vec![
            std::f64::consts::PI,
            -0.0,
            f64::MAX,
            f64::MIN_POSITIVE,
        ]);
        round_trip(Vec::<f64>::new());
        let (_, bytes) = encode_value(&Value::new(vec![1.5f64, 2.0])).unwrap();
        assert_eq!(bytes.len(), 16, "8 bytes per f64, no header");
        assert_eq!(&bytes[..8], &1.5f64.to_le_bytes());
    }

    #[test]
    fn a_truncated_raw_vector_is_a_codec_error() {
        let tag = std::any::type_name::<Vec<u64>>();
        let err = decode_value(tag, &[1, 2, 3]).unwrap_err();
        assert!(matches!(err, Error::Codec { .. }), "{err}");
        assert!(err.to_string().contains("3 bytes"), "{err}");
    }

    #[test]
    fn parts_of_a_byte_vector_share_its_buffer_and_round_trip() {
        let bytes: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        let v = Value::new(bytes.clone());
        let (tag, parts) = encode_parts(&v).unwrap();
        assert_eq!(tag, std::any::type_name::<Vec<u8>>());
        assert!(parts.meta.is_empty());
        let held = v.downcast_ref::<Vec<u8>>().unwrap();
        assert_eq!(parts.data.as_ptr(), held.as_ptr(), "no copy");
        let back = decode_parts(tag, &parts.meta, &parts.data).unwrap();
        assert_eq!(back.downcast_ref::<Vec<u8>>().unwrap(), &bytes);
        // Any split of the plain encoding decodes, through the sink too.
        for at in [0, 1, 4999, 10_000] {
            let back = decode_parts(tag, &bytes[..at], &bytes[at..]).unwrap();
            assert_eq!(back.downcast_ref::<Vec<u8>>().unwrap(), &bytes, "{at}");
            let mut sink = data_sink(tag, &bytes[..at], 10_000 - at)
                .unwrap()
                .expect("byte vectors have a sink");
            sink.buffer().copy_from_slice(&bytes[at..]);
            let back = finish_sink(tag, sink).unwrap();
            assert_eq!(back.downcast_ref::<Vec<u8>>().unwrap(), &bytes, "{at}");
        }
    }

    #[test]
    fn codecs_without_parts_fall_back_to_the_plain_encoding() {
        let v = Value::new(vec![1.5f64, -2.0]);
        let (tag, plain) = encode_value(&v).unwrap();
        let (parts_tag, parts) = encode_parts(&v).unwrap();
        assert_eq!(parts_tag, tag);
        assert!(parts.meta.is_empty());
        assert_eq!(&parts.data[..], &plain[..]);
        assert!(data_sink(tag, &[], plain.len()).unwrap().is_none());
        for at in [0, 3, plain.len()] {
            let back = decode_parts(tag, &plain[..at], &plain[at..]).unwrap();
            assert_eq!(back.downcast_ref::<Vec<f64>>().unwrap(), &[1.5, -2.0]);
        }
        // A truncated split is the plain decoder's typed error.
        let err = decode_parts(tag, &plain[..3], &plain[3..10]).unwrap_err();
        assert!(matches!(err, Error::Codec { .. }), "{err}");
        assert!(matches!(
            data_sink("no-such-tag", &[], 0),
            Err(Error::UnknownCodec { .. })
        ));
        assert!(matches!(
            decode_parts("no-such-tag", &[1], &[2]),
            Err(Error::UnknownCodec { .. })
        ));
        struct Opaque;
        assert!(matches!(
            encode_parts(&Value::new(Opaque)),
            Err(Error::NoCodec { .. })
        ));
    }
}
