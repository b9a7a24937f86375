//! [`Key`]: the name of a task, a name plus an index tuple.

use std::fmt;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::Arc;

/// The name of a task: a string plus an index tuple, like Dask's `("x-3f2a", 0, 1)`.
///
/// Cheap to clone (one reference count) and to hash (the hash is computed once, at
/// construction). Keys order by name, then index.
///
/// ```
/// use dask_core::Key;
/// let k = Key::new("x-3f2a", [0, 1]);
/// assert_eq!(k.name(), "x-3f2a");
/// assert_eq!(k.index(), &[0, 1]);
/// assert_eq!(k.to_string(), "('x-3f2a', 0, 1)");
/// ```
#[derive(Clone)]
pub struct Key(Arc<KeyInner>);

struct KeyInner {
    name: Arc<str>,
    index: Box<[u64]>,
    hash: u64,
}

impl Key {
    /// A key made of a name and an index tuple (which may be empty).
    pub fn new(name: impl Into<Arc<str>>, index: impl AsRef<[u64]>) -> Key {
        let name = name.into();
        let index: Box<[u64]> = index.as_ref().into();
        let mut hasher = rustc_hash::FxHasher::default();
        name.hash(&mut hasher);
        index.hash(&mut hasher);
        let hash = hasher.finish();
        Key(Arc::new(KeyInner { name, index, hash }))
    }

    /// A key with a name only, no index.
    pub fn named(name: impl Into<Arc<str>>) -> Key {
        Key::new(name, [])
    }

    /// The key's name (for collections: the layer's name).
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The name as a shared string, to build sibling keys without copying it.
    pub fn shared_name(&self) -> Arc<str> {
        self.0.name.clone()
    }

    /// The index tuple (for collections: the block index).
    pub fn index(&self) -> &[u64] {
        &self.0.index
    }

    /// The precomputed hash.
    pub fn fast_hash(&self) -> u64 {
        self.0.hash
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        let (a, b) = (&*self.0, &*other.0);
        // Indexes are a few numbers: compared inline (slice equality calls
        // memcmp); names are often the same `Arc` (keys of one collection).
        Arc::ptr_eq(&self.0, &other.0)
            || (a.hash == b.hash
                && a.index.len() == b.index.len()
                && a.index.iter().zip(b.index.iter()).all(|(x, y)| x == y)
                && (Arc::ptr_eq(&a.name, &b.name) || a.name == b.name))
    }
}

impl Eq for Key {}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0.hash);
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Key) -> std::cmp::Ordering {
        self.name()
            .cmp(other.name())
            .then_with(|| self.index().cmp(other.index()))
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.index().is_empty() {
            return write!(f, "'{}'", self.name());
        }
        write!(f, "('{}'", self.name())?;
        for i in self.index() {
            write!(f, ", {i}")?;
        }
        write!(f, ")")
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<&str> for Key {
    fn from(name: &str) -> Key {
        Key::named(name)
    }
}

impl From<String> for Key {
    fn from(name: String) -> Key {
        Key::named(name)
    }
}

impl serde::Serialize for Key {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (self.name(), self.index()).serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        let (name, index): (String, Vec<u64>) = serde::Deserialize::deserialize(d)?;
        Ok(Key::new(name, index))
    }
}

/// A hasher that passes a [`Key`]'s precomputed hash through.
///
/// Only meaningful for keys (and other types that write a single `u64`); other
/// writes are folded in with FxHash so it stays correct for any type.
#[derive(Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut fx = rustc_hash::FxHasher::with_seed(self.0 as usize);
        fx.write(bytes);
        self.0 = fx.finish();
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = self.0.rotate_left(5) ^ n;
    }
}

/// `BuildHasher` for maps keyed by [`Key`].
pub type KeyBuildHasher = BuildHasherDefault<KeyHasher>;

/// A `HashMap` keyed by [`Key`] that reuses the key's precomputed hash.
pub type KeyMap<V> = std::collections::HashMap<Key, V, KeyBuildHasher>;

/// A `HashSet` of [`Key`]s that reuses the key's precomputed hash.
pub type KeySet = std::collections::HashSet<Key, KeyBuildHasher>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_keys_hash_and_compare_equal() {
        let a = Key::new("x", [1, 2]);
        let b = Key::new(String::from("x"), vec![1, 2]);
        assert_eq!(a, b);
        assert_eq!(a.fast_hash(), b.fast_hash());
        assert_ne!(a, Key::new("x", [2, 1]));
        assert_ne!(a, Key::named("x"));
        let mut m = KeyMap::default();
        m.insert(a, 1);
        assert_eq!(m.get(&b), Some(&1));
    }

    #[test]
    fn display_like_dask() {
        assert_eq!(Key::named("a").to_string(), "'a'");
        assert_eq!(Key::new("a", [3]).to_string(), "('a', 3)");
    }

    #[test]
    fn ordering_is_name_then_index() {
        let mut v = vec![Key::new("b", [0]), Key::new("a", [2]), Key::new("a", [1])];
        v.sort();
        assert_eq!(
            v,
            vec![Key::new("a", [1]), Key::new("a", [2]), Key::new("b", [0])]
        );
    }
}
