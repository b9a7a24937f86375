//! Size estimates of values, for schedulers that account for memory (the
//! distributed worker's memory limit and spilling, placement by bytes).
//!
//! A type reports its size by implementing [`Sizeof`] and registering it with
//! [`register_sizeof!`](crate::register_sizeof); std's common types are
//! registered here. [`sizeof_value`] then falls back to the length of the
//! value's codec encoding (exact, but it encodes the value: register a sizeof
//! for large types), and last to [`DEFAULT_SIZEOF`].
//!
//! ```
//! use dask_core::sizeof::{sizeof_value, Sizeof};
//! use dask_core::Value;
//!
//! struct Chunk(Vec<f64>);
//! impl Sizeof for Chunk {
//!     fn sizeof(&self) -> u64 { self.0.sizeof() }
//! }
//! dask_core::register_sizeof!(Chunk);
//!
//! assert_eq!(sizeof_value(&Value::new(Chunk(vec![0.0; 1000]))), 24 + 8000);
//! assert_eq!(sizeof_value(&Value::new(String::from("abc"))), 24 + 3);
//! ```

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::OnceLock;

use crate::{codec, Value};

/// The size assumed for a value whose type has neither a sizeof nor a codec.
pub const DEFAULT_SIZEOF: u64 = 64;

/// The bytes a value holds, itself and what it owns on the heap (approximate).
pub trait Sizeof {
    /// Approximate bytes held.
    fn sizeof(&self) -> u64;
}

macro_rules! flat_sizeof {
    ($($t:ty),*) => {$(
        impl Sizeof for $t {
            fn sizeof(&self) -> u64 {
                std::mem::size_of::<$t>() as u64
            }
        }
    )*};
}
flat_sizeof!(
    bool,
    i8,
    i16,
    i32,
    i64,
    i128,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    isize,
    f32,
    f64,
    char,
    ()
);

impl Sizeof for String {
    fn sizeof(&self) -> u64 {
        std::mem::size_of::<String>() as u64 + self.capacity() as u64
    }
}

impl<T: Sizeof> Sizeof for Vec<T> {
    fn sizeof(&self) -> u64 {
        let spare = (self.capacity() - self.len()) * std::mem::size_of::<T>();
        std::mem::size_of::<Vec<T>>() as u64
            + spare as u64
            + self.iter().map(Sizeof::sizeof).sum::<u64>()
    }
}

impl<T: Sizeof> Sizeof for Option<T> {
    fn sizeof(&self) -> u64 {
        let inline = std::mem::size_of::<Option<T>>() as u64;
        match self {
            // The payload's own inline size is already part of the option's.
            Some(v) => inline + v.sizeof() - std::mem::size_of::<T>() as u64,
            None => inline,
        }
    }
}

impl<A: Sizeof, B: Sizeof> Sizeof for (A, B) {
    fn sizeof(&self) -> u64 {
        std::mem::size_of::<(A, B)>() as u64 + self.0.sizeof() + self.1.sizeof()
            - std::mem::size_of::<A>() as u64
            - std::mem::size_of::<B>() as u64
    }
}

/// One registered size estimator.
pub struct SizeofRegistration {
    /// The `TypeId` of the type.
    pub type_id: fn() -> TypeId,
    /// Its estimator (`None` when the value is not of that type).
    pub sizeof: fn(&Value) -> Option<u64>,
}

inventory::collect!(SizeofRegistration);

/// Estimates a `T` held in a value; used by [`register_sizeof!`](crate::register_sizeof).
pub fn sizeof_of<T: Sizeof + 'static>(value: &Value) -> Option<u64> {
    value.downcast_ref::<T>().ok().map(Sizeof::sizeof)
}

/// Registers `T`'s [`Sizeof`] so [`sizeof_value`] uses it for values of `T`;
/// `register_sizeof!(T, f)` registers the function `f: fn(&T) -> u64`
/// instead (for a type of another crate, which cannot implement [`Sizeof`]
/// here).
#[macro_export]
macro_rules! register_sizeof {
    ($t:ty) => {
        $crate::__private::inventory::submit! {
            $crate::sizeof::SizeofRegistration {
                type_id: || ::std::any::TypeId::of::<$t>(),
                sizeof: $crate::sizeof::sizeof_of::<$t>,
            }
        }
    };
    ($t:ty, $f:expr) => {
        $crate::__private::inventory::submit! {
            $crate::sizeof::SizeofRegistration {
                type_id: || ::std::any::TypeId::of::<$t>(),
                sizeof: |v: &$crate::Value| v.downcast_ref::<$t>().ok().map($f),
            }
        }
    };
}

fn registry() -> &'static HashMap<TypeId, &'static SizeofRegistration> {
    static REGISTRY: OnceLock<HashMap<TypeId, &'static SizeofRegistration>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        inventory::iter::<SizeofRegistration>
            .into_iter()
            .map(|r| ((r.type_id)(), r))
            .collect()
    })
}

/// Whether `value`'s type has a registered [`Sizeof`] (no encoding needed).
pub fn has_sizeof(value: &Value) -> bool {
    registry().contains_key(&value.value_type_id())
}

/// The registered [`Sizeof`] of `value`, if its type has one (cheap).
pub fn sizeof_registered(value: &Value) -> Option<u64> {
    registry()
        .get(&value.value_type_id())
        .and_then(|r| (r.sizeof)(value))
}

/// Approximate bytes held by `value`: its registered [`Sizeof`], else the
/// length of its codec encoding, else [`DEFAULT_SIZEOF`].
pub fn sizeof_value(value: &Value) -> u64 {
    if let Some(n) = sizeof_registered(value) {
        return n;
    }
    if codec::has_codec(value) {
        if let Ok((_, bytes)) = codec::encode_value(value) {
            return bytes.len() as u64;
        }
    }
    DEFAULT_SIZEOF
}

register_sizeof!(bool);
register_sizeof!(i8);
register_sizeof!(i16);
register_sizeof!(i32);
register_sizeof!(i64);
register_sizeof!(u8);
register_sizeof!(u16);
register_sizeof!(u32);
register_sizeof!(u64);
register_sizeof!(usize);
register_sizeof!(isize);
register_sizeof!(f32);
register_sizeof!(f64);
register_sizeof!(char);
register_sizeof!(());
register_sizeof!(String);
register_sizeof!(Vec<u8>);
register_sizeof!(Vec<i32>);
register_sizeof!(Vec<i64>);
register_sizeof!(Vec<u32>);
register_sizeof!(Vec<u64>);
register_sizeof!(Vec<f32>);
register_sizeof!(Vec<f64>);
register_sizeof!(Vec<bool>);
register_sizeof!(Vec<String>);
register_sizeof!(Option<i64>);
register_sizeof!(Option<f64>);
register_sizeof!(Option<String>);
register_sizeof!((i64, i64));
register_sizeof!((f64, f64));
register_sizeof!((String, i64));
register_sizeof!((String, u64));
register_sizeof!(Vec<(String, u64)>);
register_sizeof!(Vec<(String, i64)>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_types_count_heap_bytes() {
        let v: Vec<u64> = Vec::with_capacity(100);
        assert_eq!(sizeof_value(&Value::new(v)), 24 + 800);
        assert_eq!(sizeof_value(&Value::new(7u32)), 4);
        let words = vec![String::from("ab"), String::from("cde")];
        let expected = 24 + words.iter().map(|s| 24 + s.capacity() as u64).sum::<u64>();
        assert_eq!(sizeof_value(&Value::new(words)), expected);
        assert_eq!(sizeof_value(&Value::new(Some(1.5f64))), 16);
        assert!(has_sizeof(&Value::new(1i64)));
        assert_eq!(sizeof_registered(&Value::new(String::new())), Some(24));
    }

    #[test]
    fn fallbacks_use_the_codec_then_a_default() {
        // A codec but no sizeof: the encoded length.
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Encoded(Vec<u32>);
        crate::register_codec!(Encoded);
        let v = Value::new(Encoded(vec![1, 2, 300_000]));
        assert!(!has_sizeof(&v));
        let (_, bytes) = codec::encode_value(&v).unwrap();
        assert_eq!(sizeof_value(&v), bytes.len() as u64);
        assert_eq!(sizeof_registered(&v), None);
        struct Opaque;
        assert_eq!(sizeof_value(&Value::new(Opaque)), DEFAULT_SIZEOF);
    }
}
