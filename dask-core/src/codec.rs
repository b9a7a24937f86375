//! Codecs: how values of a type cross a process boundary.
//!
//! A type gets a codec with [`register_codec!`](crate::register_codec) (serde +
//! postcard) or by submitting a [`CodecRegistration`] with its own encoder
//! (ndarray chunks as raw buffers, dataframes as Arrow IPC). Values are found
//! by `TypeId`, decoded by tag. Common std types are registered here.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::OnceLock;

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

struct Codecs {
    by_type: HashMap<TypeId, &'static CodecRegistration>,
    by_tag: HashMap<&'static str, &'static CodecRegistration>,
}

fn codecs() -> &'static Codecs {
    static CODECS: OnceLock<Codecs> = OnceLock::new();
    CODECS.get_or_init(|| {
        let mut c = Codecs {
            by_type: HashMap::new(),
            by_tag: HashMap::new(),
        };
        for reg in inventory::iter::<CodecRegistration> {
            c.by_type.insert((reg.type_id)(), reg);
            c.by_tag.insert((reg.tag)(), reg);
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
    let bytes = (reg.encode)(value).map_err(|source| Error::Codec {
        tag: tag.to_owned(),
        source,
    })?;
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
    (reg.decode)(bytes).map_err(|source| Error::Codec {
        tag: tag.to_owned(),
        source,
    })
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
}
