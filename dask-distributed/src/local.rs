//! The in-process transport: when the client and the workers share a process
//! (a [`LocalCluster`](crate::LocalCluster) of threads), tasks and values are
//! handed over as `Arc`s through process-wide tables instead of being encoded.
//! Closures and values without a codec then work, and nothing is copied.
//!
//! Control messages still go over TCP to the scheduler; only task payloads and
//! data take the shortcut.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use dask_core::{Key, Task, Value};

/// A worker's memory, shared with in-process peers and clients.
pub(crate) type Memory = Arc<crate::spill::Store>;

static TASKS: LazyLock<Mutex<HashMap<u64, Arc<Task>>>> = LazyLock::new(Default::default);
static WORKERS: LazyLock<Mutex<HashMap<String, Memory>>> = LazyLock::new(Default::default);
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);
static ERRORS: LazyLock<Mutex<HashMap<Key, dask_core::Error>>> = LazyLock::new(Default::default);

/// Keeps the original error of an in-process task (its source chain cannot
/// cross TCP), for the client to take.
pub(crate) fn put_error(key: Key, error: dask_core::Error) {
    ERRORS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(key, error);
}

/// Takes the original error of a failed in-process task.
pub(crate) fn take_error(key: &Key) -> Option<dask_core::Error> {
    ERRORS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(key)
}

/// Drops errors nobody took (the computation is over).
pub(crate) fn remove_errors<'a>(keys: impl IntoIterator<Item = &'a Key>) {
    let mut errors = ERRORS.lock().unwrap_or_else(PoisonError::into_inner);
    for k in keys {
        errors.remove(k);
    }
}

/// Puts a task in the table; the token stands for it in messages.
pub(crate) fn put_task(task: Arc<Task>) -> u64 {
    let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
    TASKS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(token, task);
    token
}

/// The task behind a token, if this process holds it.
pub(crate) fn get_task(token: u64) -> Option<Arc<Task>> {
    TASKS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&token)
        .cloned()
}

/// Drops tasks whose computation is over.
pub(crate) fn remove_tasks(tokens: &[u64]) {
    let mut tasks = TASKS.lock().unwrap_or_else(PoisonError::into_inner);
    for t in tokens {
        tasks.remove(t);
    }
}

/// Makes a worker's memory reachable by its data address.
pub(crate) fn register_worker(data_addr: &str, memory: Memory) {
    WORKERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(data_addr.to_owned(), memory);
}

/// Forgets a stopped worker.
pub(crate) fn unregister_worker(data_addr: &str) {
    WORKERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(data_addr);
}

/// Reads `key` from an in-process worker's memory, if that worker lives here.
/// `None`: not in this process, or it does not hold the key.
pub(crate) fn read(data_addr: &str, key: &Key) -> Option<Value> {
    let memory = WORKERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(data_addr)
        .cloned()?;
    memory.get(key).ok().flatten()
}

/// Stores values in an in-process worker's memory (scatter without encoding).
/// False if that worker does not live in this process.
pub(crate) fn put(data_addr: &str, values: &[(Key, Value)]) -> bool {
    let Some(memory) = WORKERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(data_addr)
        .cloned()
    else {
        return false;
    };
    for (k, v) in values {
        let nbytes =
            dask_core::sizeof::sizeof_registered(v).unwrap_or(dask_core::sizeof::DEFAULT_SIZEOF);
        memory.insert(k.clone(), v.clone(), nbytes);
    }
    true
}

/// Whether the worker at `data_addr` lives in this process.
pub(crate) fn hosts(data_addr: &str) -> bool {
    WORKERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .contains_key(data_addr)
}
