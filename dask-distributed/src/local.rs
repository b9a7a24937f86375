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

use bytes::Bytes;
use dask_core::{Key, Task, Value};

use crate::messages::StoredTask;

/// A worker's memory, shared with in-process peers and clients.
pub(crate) type Memory = Arc<crate::spill::Store>;

/// An in-process task and the instance id of the scheduler it was submitted to.
type Filed = (u64, Arc<Task>);

/// In-process tasks by token.
static TASKS: LazyLock<Mutex<HashMap<u64, Filed>>> = LazyLock::new(Default::default);
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

/// Puts a task for the scheduler whose instance id is `scheduler` in the
/// table; the token stands for it in messages.
pub(crate) fn put_task(scheduler: u64, task: Arc<Task>) -> u64 {
    let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
    TASKS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(token, (scheduler, task));
    token
}

/// The task behind a token, if this process holds it.
pub(crate) fn get_task(token: u64) -> Option<Arc<Task>> {
    TASKS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&token)
        .map(|(_, task)| task.clone())
}

/// Drops every task submitted to the scheduler `scheduler`, which stopped:
/// what it held went with it, and a graph it never read (sent as it
/// stopped) would otherwise stay in the table for the life of the process.
pub(crate) fn forget_scheduler(scheduler: u64) {
    TASKS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .retain(|_, (s, _)| *s != scheduler);
}

/// The scheduler's copy of a task's encoded spec. An in-process task of this
/// process stays in the table exactly as long as the scheduler holds its
/// spec (in the task's state or in a `Compute` being sent): dropping the last
/// copy removes it. The client that submitted it may be gone by then while a
/// queue, a variable or another client still holds the key, and a worker
/// that dies makes the scheduler run it again.
pub(crate) fn held_run_spec(run_spec: Vec<u8>) -> Bytes {
    match own_token(&run_spec) {
        Some(token) => Bytes::from_owner(HeldTask {
            spec: run_spec,
            token,
        }),
        None => Bytes::from(run_spec),
    }
}

/// The token of an in-process task of this process, if `run_spec` is one.
fn own_token(run_spec: &[u8]) -> Option<u64> {
    // Postcard writes the variant index first: skip wire tasks undecoded.
    const LOCAL_VARIANT: u8 = 1;
    if run_spec.first() != Some(&LOCAL_VARIANT) {
        return None;
    }
    match crate::protocol::decode::<StoredTask>("task", run_spec) {
        Ok(StoredTask::Local { pid, token }) if pid == std::process::id() => Some(token),
        _ => None,
    }
}

/// An in-process task's spec that removes the task from the table when the
/// scheduler drops its last copy.
struct HeldTask {
    spec: Vec<u8>,
    token: u64,
}

impl AsRef<[u8]> for HeldTask {
    fn as_ref(&self) -> &[u8] {
        &self.spec
    }
}

impl Drop for HeldTask {
    fn drop(&mut self) {
        remove_tasks(&[self.token]);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(stored: &StoredTask) -> Vec<u8> {
        crate::protocol::encode("task", stored).unwrap().to_vec()
    }

    #[test]
    fn an_own_in_process_task_leaves_the_table_with_the_last_copy_of_its_spec() {
        let task = Arc::new(Task::new(
            Arc::new(dask_core::op::Identity),
            vec![dask_core::Arg::Value(Value::new(1u64))],
        ));
        let token = put_task(7, task);
        let spec = encoded(&StoredTask::Local {
            pid: std::process::id(),
            token,
        });
        let held = held_run_spec(spec.clone());
        assert_eq!(&held[..], &spec[..]);
        let copy = held.clone();
        drop(held);
        assert!(get_task(token).is_some(), "a copy is still held");
        drop(copy);
        assert!(get_task(token).is_none(), "removed with the last copy");
    }

    #[test]
    fn a_stopped_scheduler_takes_its_tasks_along() {
        let task = || {
            Arc::new(Task::new(
                Arc::new(dask_core::op::Identity),
                vec![dask_core::Arg::Value(Value::new(1u64))],
            ))
        };
        // Instance ids are random per scheduler: these two are this test's.
        let (stopped, running) = (0x5eed_0001_u64, 0x5eed_0002_u64);
        let lost = put_task(stopped, task());
        let kept = put_task(running, task());
        forget_scheduler(stopped);
        assert!(get_task(lost).is_none(), "the stopped scheduler's task");
        assert!(get_task(kept).is_some(), "another scheduler's task stays");
        forget_scheduler(running);
        assert!(get_task(kept).is_none());
    }

    /// Tasks in the table for the scheduler instance `scheduler`.
    fn tasks_of(scheduler: u64) -> usize {
        TASKS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter(|(s, _)| *s == scheduler)
            .count()
    }

    /// A cluster shut down while a task runs and a future is held: none of
    /// its tasks stays in the process-wide table.
    #[test]
    fn a_cluster_shut_down_leaves_none_of_its_tasks_behind() {
        let cluster = crate::LocalCluster::builder()
            .n_workers(1)
            .threads_per_worker(1)
            .no_dashboard()
            .start()
            .unwrap();
        let client = crate::Client::with_cluster(cluster).unwrap();
        let instance = client.inner().scheduler_instance();
        let done = client.submit(|x: u64| x + 1, (1u64,)).unwrap();
        assert_eq!(done.result().unwrap(), 2);
        let _slow = client
            .submit(
                |x: u64| {
                    std::thread::sleep(std::time::Duration::from_millis(300));
                    x
                },
                (1u64,),
            )
            .unwrap();
        assert!(tasks_of(instance) > 0, "held futures keep their tasks");
        client.shutdown();
        assert_eq!(tasks_of(instance), 0);
    }

    #[test]
    fn other_specs_are_not_tied_to_the_table() {
        let other_pid = encoded(&StoredTask::Local {
            pid: std::process::id().wrapping_add(1),
            token: 5,
        });
        assert_eq!(own_token(&other_pid), None);
        let wire = encoded(&StoredTask::Wire {
            task: crate::protocol::WireTask {
                op: "x".into(),
                params: vec![],
                args: vec![],
            },
            frames: vec![vec![1]],
        });
        assert_eq!(own_token(&wire), None);
        assert_eq!(own_token(&[]), None);
    }
}
