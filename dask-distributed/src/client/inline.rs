//! Small results that came with their reports: a worker sends the encoded
//! value of a key a client waits for with its report when it is small (see
//! `worker::INLINE_RESULT_LIMIT`), the scheduler passes it on, and the
//! client keeps it here until it gathers the key, which then needs no
//! who-has and no fetch from the worker.

use bytes::Bytes;
use dask_core::{codec, Key, Value};
use std::collections::HashMap;

/// How many bytes of reported values a client keeps at most: beyond it,
/// later values are not kept and are fetched from their workers as usual.
pub(crate) const INLINE_VALUES_LIMIT: usize = 64 * 1024 * 1024;

/// Encoded values by key, bounded by [`INLINE_VALUES_LIMIT`] in all.
#[derive(Default)]
pub(crate) struct InlineValues {
    values: HashMap<Key, (String, Bytes)>,
    bytes: usize,
}

impl InlineValues {
    /// Keeps `key`'s value (codec `tag`, encoded in `frame`) unless the
    /// limit is reached.
    pub(crate) fn insert(&mut self, key: Key, tag: String, frame: Bytes) {
        self.remove(&key);
        if self.bytes + frame.len() > INLINE_VALUES_LIMIT {
            return;
        }
        self.bytes += frame.len();
        self.values.insert(key, (tag, frame));
    }

    /// Drops `key`'s value, if kept.
    pub(crate) fn remove(&mut self, key: &Key) {
        if let Some((_, frame)) = self.values.remove(key) {
            self.bytes -= frame.len();
        }
    }

    /// Takes the kept values of `keys` out, decoded; a value that does not
    /// decode is left to the usual fetch.
    pub(crate) fn take(&mut self, keys: &[Key]) -> HashMap<Key, Value> {
        let mut out = HashMap::new();
        if self.values.is_empty() {
            return out;
        }
        for key in keys {
            let Some((tag, frame)) = self.values.remove(key) else {
                continue;
            };
            self.bytes -= frame.len();
            if let Ok(value) = codec::decode_value(&tag, &frame) {
                out.insert(key.clone(), value);
            }
        }
        out
    }

    /// Bytes kept.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(v: i64) -> (String, Bytes) {
        let (tag, bytes) = codec::encode_value(&Value::new(v)).unwrap();
        (tag.to_string(), Bytes::from(bytes))
    }

    #[test]
    fn values_are_taken_once_and_counted() {
        let mut kept = InlineValues::default();
        let (tag, frame) = encoded(41);
        let n = frame.len();
        kept.insert(Key::named("a"), tag.clone(), frame.clone());
        kept.insert(Key::named("a"), tag.clone(), frame.clone()); // replaced, not doubled
        kept.insert(Key::named("b"), tag, frame);
        assert_eq!(kept.bytes(), 2 * n);
        let got = kept.take(&[Key::named("a"), Key::named("c")]);
        assert_eq!(got.len(), 1);
        assert_eq!(*got[&Key::named("a")].downcast_ref::<i64>().unwrap(), 41);
        assert!(kept.take(&[Key::named("a")]).is_empty(), "taken once");
        kept.remove(&Key::named("b"));
        assert_eq!(kept.bytes(), 0);
    }

    #[test]
    fn a_value_that_does_not_decode_is_left_to_the_fetch() {
        let mut kept = InlineValues::default();
        kept.insert(
            Key::named("a"),
            "no-such-codec".into(),
            Bytes::from_static(b"x"),
        );
        let (tag, _) = encoded(0);
        kept.insert(Key::named("b"), tag, Bytes::from_static(b"")); // truncated
        assert!(kept.take(&[Key::named("a"), Key::named("b")]).is_empty());
        assert_eq!(kept.bytes(), 0);
    }

    #[test]
    fn values_beyond_the_limit_are_not_kept() {
        let mut kept = InlineValues::default();
        let big = Bytes::from(vec![0u8; INLINE_VALUES_LIMIT / 2 + 1]);
        let (tag, _) = encoded(0);
        kept.insert(Key::named("a"), tag.clone(), big.clone());
        kept.insert(Key::named("b"), tag, big.clone());
        assert_eq!(kept.bytes(), big.len());
    }
}
