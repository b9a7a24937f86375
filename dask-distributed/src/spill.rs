//! A worker's data: values in memory up to a limit, the least recently used
//! ones spilled to a per-worker directory beyond it (Dask's `SpillBuffer`).
//!
//! Values are written with their codec and read back on demand, for tasks
//! ([`Store::get`], which brings the value back into memory) and for peers
//! ([`Store::get_encoded`], which sends the file's bytes as they are). A value
//! whose type has no codec cannot be spilled: it stays in memory and counts
//! as *unspillable* in [`StoreStats`]. The directory is created on the first
//! spill and removed when the store is dropped.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use dask_core::{codec, Key, KeySet, Value};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Dask's memory thresholds, as fractions of a worker's memory limit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MemoryThresholds {
    /// Spill least recently used values once the data held exceeds this
    /// (Dask's `distributed.worker.memory.target`, 0.6).
    pub target: f64,
    /// Spill once the process's resident memory exceeds this, when it is
    /// measured (`memory.spill`, 0.7).
    pub spill: f64,
    /// Stop starting tasks above this (`memory.pause`, 0.8).
    pub pause: f64,
    /// Stop the worker above this, by process memory (`memory.terminate`, 0.95).
    pub terminate: f64,
}

impl Default for MemoryThresholds {
    fn default() -> Self {
        MemoryThresholds {
            target: 0.6,
            spill: 0.7,
            pause: 0.8,
            terminate: 0.95,
        }
    }
}

impl MemoryThresholds {
    /// Checks that every fraction lies in (0, 1] and that they do not decrease
    /// from target to terminate.
    pub fn validate(&self) -> Result<()> {
        let all = [
            ("target", self.target),
            ("spill", self.spill),
            ("pause", self.pause),
            ("terminate", self.terminate),
        ];
        for (name, f) in all {
            if !(f > 0.0 && f <= 1.0) {
                return Err(Error::InvalidConfig {
                    message: format!(
                        "memory threshold {name} = {f} must be a fraction in (0, 1], e.g. 0.6"
                    ),
                });
            }
        }
        if !(self.target <= self.spill && self.spill <= self.pause && self.pause <= self.terminate)
        {
            return Err(Error::InvalidConfig {
                message: format!(
                    "memory thresholds must satisfy target <= spill <= pause <= terminate, got {self:?}"
                ),
            });
        }
        Ok(())
    }
}

/// What a store holds, in bytes (estimates from [`dask_core::sizeof`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreStats {
    /// Bytes of values in memory (spillable or not).
    pub memory_bytes: u64,
    /// Bytes of values in memory that have no codec and cannot be spilled.
    pub unspillable_bytes: u64,
    /// Bytes of values on disk (their estimated in-memory size).
    pub spilled_bytes: u64,
    /// Values in memory.
    pub memory_keys: u64,
    /// Values on disk.
    pub spilled_keys: u64,
    /// Values written to disk since the start.
    pub spill_writes: u64,
    /// Values read back from disk since the start.
    pub spill_reads: u64,
}

struct Fast {
    value: Value,
    nbytes: u64,
    /// Position in the LRU order; `None` when unspillable (not in the order).
    tick: Option<u64>,
}

struct Slow {
    tag: String,
    nbytes: u64,
    path: PathBuf,
}

#[derive(Default)]
struct Inner {
    fast: HashMap<Key, Fast>,
    /// Spillable values in memory, least recently used first.
    lru: BTreeMap<u64, Key>,
    slow: HashMap<Key, Slow>,
    tick: u64,
    fast_bytes: u64,
    unspillable: KeySet,
    unspillable_bytes: u64,
    slow_bytes: u64,
    writes: u64,
    reads: u64,
    files: u64,
}

/// Where spilled values go; see the module docs.
pub struct Store {
    inner: Mutex<Inner>,
    /// Spill beyond this many bytes in memory (`None`: never spill).
    target_bytes: Option<u64>,
    dir: PathBuf,
}

static STORES: AtomicU64 = AtomicU64::new(0);

/// A value as [`Store`] holds it.
enum Held {
    /// Spilled: its codec tag and the file's bytes.
    Spilled(String, Vec<u8>),
    /// In memory.
    InMemory(Value),
}

impl Store {
    /// A store that keeps everything in memory.
    pub fn unlimited() -> Store {
        Store::new(None, None)
    }

    /// A store that spills beyond `target_bytes` into a fresh directory under
    /// `parent` (default: the system's temporary directory).
    pub fn new(target_bytes: Option<u64>, parent: Option<&Path>) -> Store {
        let parent = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
        let n = STORES.fetch_add(1, Ordering::Relaxed);
        let dir = parent.join(format!(
            "dask-worker-space/worker-{}-{n}-{:x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        ));
        Store {
            inner: Mutex::new(Inner::default()),
            target_bytes,
            dir,
        }
    }

    /// The spill directory (it exists once something was spilled).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores `value` (of about `nbytes`) under `key`, replacing any previous
    /// value, then spills down to the target.
    pub fn insert(&self, key: Key, value: Value, nbytes: u64) {
        self.insert_unless(key, value, nbytes, || false);
    }

    /// [`Store::insert`], unless `cancelled()` (checked under the store's lock)
    /// says the value is no longer wanted; returns whether it was stored. A
    /// canceller that sets its flag before calling [`Store::remove`] can never
    /// leave the value behind.
    pub fn insert_unless(
        &self,
        key: Key,
        value: Value,
        nbytes: u64,
        cancelled: impl FnOnce() -> bool,
    ) -> bool {
        let mut inner = self.lock();
        if cancelled() {
            return false;
        }
        inner.remove(&key);
        inner.insert_fast(key, value, nbytes);
        if let Some(target) = self.target_bytes {
            self.spill_down_to(&mut inner, target);
        }
        true
    }

    /// Whether `key` is held, in memory or on disk.
    pub fn contains(&self, key: &Key) -> bool {
        let inner = self.lock();
        inner.fast.contains_key(key) || inner.slow.contains_key(key)
    }

    /// The value of `key`, read back from disk (and kept in memory again) if
    /// it was spilled. `Ok(None)`: not held.
    pub fn get(&self, key: &Key) -> Result<Option<Value>> {
        let mut inner = self.lock();
        if inner.fast.contains_key(key) {
            inner.touch(key);
            return Ok(inner.fast.get(key).map(|f| f.value.clone()));
        }
        let Some(slow) = inner.slow.get(key) else {
            return Ok(None);
        };
        let bytes = std::fs::read(&slow.path)?;
        let value = codec::decode_value(&slow.tag, &bytes)?;
        let nbytes = slow.nbytes;
        inner.remove(key);
        inner.reads += 1;
        inner.insert_fast(key.clone(), value.clone(), nbytes);
        if let Some(target) = self.target_bytes {
            self.spill_down_to(&mut inner, target);
        }
        Ok(Some(value))
    }

    /// The value of `key` encoded with its codec (a spilled value's file as it
    /// is, without decoding it). `Ok(None)`: not held.
    pub fn get_encoded(&self, key: &Key) -> Result<Option<(String, Vec<u8>)>> {
        Ok(match self.held(key)? {
            None => None,
            Some(Held::Spilled(tag, bytes)) => Some((tag, bytes)),
            Some(Held::InMemory(value)) => {
                let (tag, bytes) = codec::encode_value(&value)?;
                Some((tag.to_owned(), bytes))
            }
        })
    }

    /// The value of `key` in its codec's split encoding
    /// (`dask_core::codec::encode_parts`: a chunk's data part is its own
    /// buffer); a spilled value's file as it is, as data after an empty meta
    /// part. `Ok(None)`: not held.
    pub fn get_parts(&self, key: &Key) -> Result<Option<(String, codec::Parts)>> {
        Ok(match self.held(key)? {
            None => None,
            Some(Held::Spilled(tag, bytes)) => Some((
                tag,
                codec::Parts {
                    meta: Vec::new(),
                    data: bytes.into(),
                },
            )),
            Some(Held::InMemory(value)) => {
                let (tag, parts) = codec::encode_parts(&value)?;
                Some((tag.to_owned(), parts))
            }
        })
    }

    /// `key`'s value as held: a spilled file's codec tag and bytes (read
    /// now), or the value in memory (touched as recently used).
    fn held(&self, key: &Key) -> Result<Option<Held>> {
        let mut inner = self.lock();
        if let Some(slow) = inner.slow.get(key) {
            let bytes = std::fs::read(&slow.path)?;
            let tag = slow.tag.clone();
            inner.reads += 1;
            return Ok(Some(Held::Spilled(tag, bytes)));
        }
        inner.touch(key);
        Ok(inner.fast.get(key).map(|f| Held::InMemory(f.value.clone())))
    }

    /// Drops `key` (from memory or disk); whether it was held.
    pub fn remove(&self, key: &Key) -> bool {
        self.lock().remove(key)
    }

    /// Spills least recently used values until at most `bytes` stay in memory
    /// (or only unspillable values are left); returns the bytes spilled.
    pub fn spill_to(&self, bytes: u64) -> u64 {
        let mut inner = self.lock();
        self.spill_down_to(&mut inner, bytes)
    }

    /// What the store holds.
    pub fn stats(&self) -> StoreStats {
        let inner = self.lock();
        StoreStats {
            memory_bytes: inner.fast_bytes,
            unspillable_bytes: inner.unspillable_bytes,
            spilled_bytes: inner.slow_bytes,
            memory_keys: inner.fast.len() as u64,
            spilled_keys: inner.slow.len() as u64,
            spill_writes: inner.writes,
            spill_reads: inner.reads,
        }
    }

    fn spill_down_to(&self, inner: &mut Inner, target: u64) -> u64 {
        let mut spilled = 0;
        while inner.fast_bytes > target {
            let Some((_, key)) = inner.lru.pop_first() else {
                break; // only unspillable values left
            };
            let fast = inner.fast.remove(&key).expect("lru keys are in memory");
            inner.fast_bytes -= fast.nbytes;
            let written = if codec::has_codec(&fast.value) {
                self.write(inner, &fast.value)
            } else {
                None
            };
            match written {
                Some((tag, path)) => {
                    spilled += fast.nbytes;
                    inner.writes += 1;
                    inner.slow_bytes += fast.nbytes;
                    inner.slow.insert(
                        key,
                        Slow {
                            tag,
                            nbytes: fast.nbytes,
                            path,
                        },
                    );
                }
                None => {
                    // No codec (or the disk failed): it stays, out of the LRU order.
                    inner.fast_bytes += fast.nbytes;
                    inner.unspillable_bytes += fast.nbytes;
                    inner.unspillable.insert(key.clone());
                    inner.fast.insert(key, Fast { tick: None, ..fast });
                }
            }
        }
        spilled
    }

    fn write(&self, inner: &mut Inner, value: &Value) -> Option<(String, PathBuf)> {
        let (tag, bytes) = codec::encode_value(value).ok()?;
        std::fs::create_dir_all(&self.dir).ok()?;
        inner.files += 1;
        let path = self.dir.join(format!("{}.bin", inner.files));
        std::fs::write(&path, bytes).ok()?;
        Some((tag.to_owned(), path))
    }
}

impl Inner {
    fn insert_fast(&mut self, key: Key, value: Value, nbytes: u64) {
        self.tick += 1;
        let tick = self.tick;
        self.lru.insert(tick, key.clone());
        self.fast_bytes += nbytes;
        self.fast.insert(
            key,
            Fast {
                value,
                nbytes,
                tick: Some(tick),
            },
        );
    }

    fn touch(&mut self, key: &Key) {
        self.tick += 1;
        let tick = self.tick;
        if let Some(f) = self.fast.get_mut(key) {
            if let Some(old) = f.tick.replace(tick) {
                self.lru.remove(&old);
                self.lru.insert(tick, key.clone());
            } else {
                f.tick = None; // unspillable stays out of the order
            }
        }
    }

    fn remove(&mut self, key: &Key) -> bool {
        if let Some(f) = self.fast.remove(key) {
            self.fast_bytes -= f.nbytes;
            if let Some(t) = f.tick {
                self.lru.remove(&t);
            }
            if self.unspillable.remove(key) {
                self.unspillable_bytes -= f.nbytes;
            }
            return true;
        }
        if let Some(s) = self.slow.remove(key) {
            self.slow_bytes -= s.nbytes;
            let _ = std::fs::remove_file(&s.path);
            return true;
        }
        false
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("target_bytes", &self.target_bytes)
            .field("dir", &self.dir)
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_come_from_memory_as_split_and_from_disk_as_the_file() {
        let store = Store::new(Some(1500), None);
        let bytes = |i: u64| -> Vec<u8> { (0..1000).map(|j| (i + j) as u8).collect() };
        for i in 0..3u64 {
            store.insert(key(i), Value::new(bytes(i)), 1000);
        }
        assert_eq!(store.stats().spilled_keys, 2);
        for i in 0..3u64 {
            let (tag, parts) = store.get_parts(&key(i)).unwrap().unwrap();
            let (plain_tag, plain) = store.get_encoded(&key(i)).unwrap().unwrap();
            assert_eq!(tag, plain_tag);
            assert_eq!([&parts.meta[..], &parts.data[..]].concat(), plain);
            let back = codec::decode_parts(&tag, &parts.meta, &parts.data).unwrap();
            assert_eq!(back.downcast_ref::<Vec<u8>>().unwrap(), &bytes(i));
        }
        assert!(store.get_parts(&key(9)).unwrap().is_none());
    }

    fn key(i: u64) -> Key {
        Key::new("v", [i])
    }

    #[test]
    fn spills_least_recently_used_and_reads_back() {
        let store = Store::new(Some(2500), None);
        for i in 0..10u64 {
            store.insert(key(i), Value::new(vec![i; 125]), 1000);
        }
        let s = store.stats();
        assert_eq!(s.memory_keys, 2);
        assert_eq!(s.spilled_keys, 8);
        assert_eq!(s.spill_writes, 8);
        assert!(store.dir().is_dir());
        // Touch 8 (in memory), read 0 back: 9 is now the least recently used.
        assert!(store.get(&key(8)).unwrap().is_some());
        let v0 = store.get(&key(0)).unwrap().unwrap();
        assert_eq!(v0.downcast_ref::<Vec<u64>>().unwrap(), &vec![0u64; 125]);
        let s = store.stats();
        assert_eq!(s.spill_reads, 1);
        assert!(store.lock().slow.contains_key(&key(9)));
        // A spilled value served as encoded bytes decodes to the same value.
        let (tag, bytes) = store.get_encoded(&key(3)).unwrap().unwrap();
        let back = codec::decode_value(&tag, &bytes).unwrap();
        assert_eq!(back.downcast_ref::<Vec<u64>>().unwrap(), &vec![3u64; 125]);
        assert!(store.remove(&key(3)));
        assert!(!store.contains(&key(3)));
        assert_eq!(store.get(&key(3)).unwrap().map(|_| ()), None);
        let dir = store.dir().to_path_buf();
        drop(store);
        assert!(!dir.exists());
    }

    #[test]
    fn values_without_a_codec_stay_in_memory_and_say_so() {
        struct Opaque;
        let store = Store::new(Some(100), None);
        store.insert(key(0), Value::new(Opaque), 500);
        store.insert(key(1), Value::new(7u64), 8);
        let s = store.stats();
        assert_eq!(s.unspillable_bytes, 500);
        assert_eq!(s.memory_bytes, 500);
        assert_eq!(s.spilled_keys, 1);
        assert!(store.get(&key(0)).unwrap().is_some());
        assert!(store.remove(&key(0)));
        assert_eq!(store.stats().unspillable_bytes, 0);
    }

    #[test]
    fn thresholds_are_validated() {
        assert!(MemoryThresholds::default().validate().is_ok());
        let bad = MemoryThresholds {
            pause: 1.5,
            ..Default::default()
        };
        assert!(matches!(bad.validate(), Err(Error::InvalidConfig { .. })));
        let unordered = MemoryThresholds {
            target: 0.9,
            ..Default::default()
        };
        assert!(unordered.validate().is_err());
    }
}
