//! [`tokenize`]: deterministic names from inputs, so equal work gets equal keys.

use std::hash::Hasher;

use siphasher::sip128::{Hasher128, SipHasher13};

/// A value that can be fed into a [`Tokenizer`].
///
/// Implemented for primitives, strings, slices, vectors, options, tuples and
/// [`Key`](crate::Key); collections implement it for their own types. Unlike
/// `Hash`, floats are tokenized by their bits.
pub trait Tokenize {
    /// Feeds `self` into the tokenizer.
    fn tokenize_into(&self, t: &mut Tokenizer);
}

/// Accumulates tokens; [`Tokenizer::finish`] gives a 32-hex-digit token.
///
/// The hash (SipHash-1-3, 128 bits, fixed keys) is stable across processes and
/// machines, so a worker and a client agree on names.
pub struct Tokenizer(SipHasher13);

impl Default for Tokenizer {
    fn default() -> Self {
        Tokenizer(SipHasher13::new_with_keys(0x6461736b, 0x2d7273))
    }
}

impl Tokenizer {
    /// Feeds raw bytes (length-prefixed, so `("ab", "c")` and `("a", "bc")` differ).
    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.write_u64(bytes.len() as u64);
        self.0.write(bytes);
        self
    }

    /// Feeds one tokenizable value.
    pub fn add<T: Tokenize + ?Sized>(&mut self, value: &T) -> &mut Self {
        value.tokenize_into(self);
        self
    }

    /// The token: 32 lowercase hex digits.
    pub fn finish(&self) -> String {
        format!("{:032x}", self.0.finish128().as_u128())
    }
}

/// A deterministic 32-hex-digit token of `value` (use a tuple for several inputs).
///
/// ```
/// use dask_core::tokenize;
/// assert_eq!(tokenize(&("add", 1, 2.5)), tokenize(&("add", 1, 2.5)));
/// assert_ne!(tokenize(&("add", 1, 2.5)), tokenize(&("add", 2, 2.5)));
/// ```
pub fn tokenize<T: Tokenize + ?Sized>(value: &T) -> String {
    Tokenizer::default().add(value).finish()
}

macro_rules! tokenize_ints {
    ($($t:ty),*) => {$(
        impl Tokenize for $t {
            fn tokenize_into(&self, t: &mut Tokenizer) {
                t.bytes(&self.to_le_bytes());
            }
        }
    )*};
}
tokenize_ints!(u8, u16, u32, u64, u128, i8, i16, i32, i64, i128);

impl Tokenize for usize {
    fn tokenize_into(&self, t: &mut Tokenizer) {
        (*self as u64).tokenize_into(t)
    }
}

impl Tokenize for isize {
    fn tokenize_into(&self, t: &mut Tokenizer) {
        (*self as i64).tokenize_into(t)
    }
}

impl Tokenize for f32 {
    fn tokenize_into(&self, t: &mut Tokenizer) {
        t.bytes(&self.to_bits().to_le_bytes());
    }
}

impl Tokenize for f64 {
    fn tokenize_into(&self, t: &mut Tokenizer) {
        t.bytes(&self.to_bits().to_le_bytes());
    }
}

impl Tokenize for bool {
    fn tokenize_into(&self, t: &mut Tokenizer) {
        t.bytes(&[*self as u8]);
    }
}

impl Tokenize for char {
    fn tokenize_into(&self, t: &mut Tokenizer) {
        (*self as u32).tokenize_into(t)
    }
}

impl Tokenize for str {
    fn tokenize_into(&self, t: &mut Tokenizer) {
        t.bytes(self.as_bytes());
    }
}

impl Tokenize for String {
    fn tokenize_into(&self, t: &mut Tokenizer) {
        self.as_str().tokenize_into(t)
    }
}

impl<T: Tokenize> Tokenize for [T] {
    fn tokenize_into(&self, t: &mut Tokenizer) {
        (self.len() as u64).tokenize_into(t);
        for item in self {
            item.tokenize_into(t);
        }
    }
}

impl<T: Tokenize, const N: usize> Tokenize for [T; N] {
    fn tokenize_into(&self, t: &mut Tokenizer) {
        self.as_slice().tokenize_into(t)
    }
}

impl<T: Tokenize> Tokenize for Vec<T> {
    fn tokenize_into(&self, t: &mut Tokenizer) {
        self.as_slice().tokenize_into(t)
    }
}

impl<T: Tokenize> Tokenize for Option<T> {
    fn tokenize_into(&self, t: &mut Tokenizer) {
        match self {
            None => t.bytes(&[0]),
            Some(v) => t.bytes(&[1]).add(v),
        };
    }
}

impl<T: Tokenize + ?Sized> Tokenize for &T {
    fn tokenize_into(&self, t: &mut Tokenizer) {
        (**self).tokenize_into(t)
    }
}

impl<T: Tokenize + ?Sized> Tokenize for Box<T> {
    fn tokenize_into(&self, t: &mut Tokenizer) {
        (**self).tokenize_into(t)
    }
}

impl Tokenize for crate::Key {
    fn tokenize_into(&self, t: &mut Tokenizer) {
        t.add(self.name()).add(self.index());
    }
}

impl Tokenize for () {
    fn tokenize_into(&self, t: &mut Tokenizer) {
        t.bytes(&[]);
    }
}

macro_rules! tokenize_tuples {
    ($(($($n:tt $t:ident),+))*) => {$(
        impl<$($t: Tokenize),+> Tokenize for ($($t,)+) {
            fn tokenize_into(&self, t: &mut Tokenizer) {
                $( self.$n.tokenize_into(t); )+
            }
        }
    )*};
}
tokenize_tuples! {
    (0 A)
    (0 A, 1 B)
    (0 A, 1 B, 2 C)
    (0 A, 1 B, 2 C, 3 D)
    (0 A, 1 B, 2 C, 3 D, 4 E)
    (0 A, 1 B, 2 C, 3 D, 4 E, 5 F)
    (0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G)
    (0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H)
}

/// A token no other call in this process (or, with overwhelming probability, any
/// other process) returns: for impure tasks, like Dask's `uuid4` keys.
pub fn unique_token() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    tokenize(&(std::process::id(), nanos, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_deterministic_and_input_sensitive() {
        let a = tokenize(&("x", vec![1u32, 2, 3], 0.5f64));
        assert_eq!(a.len(), 32);
        assert_eq!(a, tokenize(&("x", vec![1u32, 2, 3], 0.5f64)));
        assert_ne!(a, tokenize(&("x", vec![1u32, 2, 4], 0.5f64)));
        assert_ne!(tokenize(&("ab", "c")), tokenize(&("a", "bc")));
        assert_ne!(tokenize(&0.0f64), tokenize(&-0.0f64));
    }

    #[test]
    fn unique_tokens_differ() {
        assert_ne!(unique_token(), unique_token());
    }
}
