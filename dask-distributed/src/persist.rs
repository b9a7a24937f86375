//! [`Client::persist`]: computes a collection on the cluster and keeps the
//! results on the workers, referenced by futures, instead of gathering them.
//!
//! The persisted collection's graph holds, under each output key, a task
//! whose op owns a future of that key (the value stays on the cluster while
//! the collection lives). Computing it with the same client reuses the
//! values where they are; computing it on another scheduler fetches them from
//! the cluster (blocking, from that scheduler's thread). Sent to a worker
//! process, the op only ever runs if the value was lost, and then fails with
//! an error that says to persist again.

use std::any::TypeId;
use std::borrow::Cow;
use std::marker::PhantomData;
use std::sync::Arc;

use dask_core::op::OpRegistration;
use dask_core::{Arg, BoxError, Collection, Graph, Key, Op, Task, Value};

use crate::futures::fetch_value;
use crate::{Client, Future, Result};

/// The tag persisted-key ops are registered under.
pub const PERSISTED_TAG: &str = "dask_distributed::persisted";

/// The op under a persisted key: holds the key's future.
struct Persisted {
    future: Future<Value>,
}

impl Op for Persisted {
    fn name(&self) -> &str {
        "persisted"
    }

    fn call(&self, _args: &[Value]) -> std::result::Result<Value, BoxError> {
        let inner = self.future.inner.clone();
        let key = self.future.key.clone();
        Ok(inner.wait_on(fetch_value(inner.clone(), key))??)
    }

    fn tag(&self) -> Option<&str> {
        Some(PERSISTED_TAG)
    }

    fn params(&self) -> Vec<u8> {
        postcard::to_allocvec(&self.future.key).unwrap_or_default()
    }
}

/// What a persisted key's op becomes in another process: it runs only when
/// the value is gone, and says so.
struct PersistedLost {
    key: String,
}

impl Op for PersistedLost {
    fn name(&self) -> &str {
        "persisted"
    }

    fn call(&self, _args: &[Value]) -> std::result::Result<Value, BoxError> {
        Err(format!(
            "the persisted value of {} is no longer on the cluster (its worker died, or \
             the persisted collection was dropped): persist the collection again",
            self.key
        )
        .into())
    }

    fn tag(&self) -> Option<&str> {
        Some(PERSISTED_TAG)
    }
}

fn build_lost(params: &[u8]) -> std::result::Result<Arc<dyn Op>, BoxError> {
    let key: Key = postcard::from_bytes(params)?;
    Ok(Arc::new(PersistedLost {
        key: key.to_string(),
    }))
}

dask_core::__private::inventory::submit! {
    OpRegistration {
        tag: || PERSISTED_TAG,
        type_id: || TypeId::of::<Persisted>(),
        build: build_lost,
        encode: None,
    }
}

impl Client {
    /// Computes `collection` on the cluster and returns the same collection
    /// backed by the results, which stay on the workers (referenced by
    /// futures inside the returned collection's graph) instead of coming
    /// here, like Dask's `client.persist`. Dropping the returned collection
    /// releases them.
    pub fn persist<C: Collection>(&self, collection: &C) -> Result<C> {
        Ok(collection.persist_with(self)?)
    }

    /// Runs `graph` for `outputs` and returns a graph holding, under each
    /// output key, a task that refers to the value on the cluster.
    pub fn persist_graph(&self, graph: &Graph, outputs: &[Key]) -> Result<Graph> {
        let inner = self.inner().clone();
        let mut wanted: Vec<Key> = outputs.to_vec();
        wanted.sort();
        wanted.dedup();
        let submitted = inner.submit_graph(graph, &wanted)?;
        // The futures own the counts submit_graph took: any early return
        // releases them.
        let futures: Vec<Future<Value>> = wanted
            .iter()
            .map(|k| Future {
                key: k.clone(),
                inner: inner.clone(),
                _type: PhantomData,
            })
            .collect();
        inner.block_on(inner.await_reports(submitted.receivers))??;
        let mut out = Graph::with_capacity(futures.len());
        for future in futures {
            out.insert(
                future.key.clone(),
                Task::new(Arc::new(Persisted { future }), Vec::new()),
            );
        }
        Ok(out)
    }
}

/// Graph optimizations may fold a persisted key's task into its dependent;
/// on the cluster it must stay a key of its own (its value is there). Gives
/// the graph with those nested tasks turned back into keys.
pub(crate) fn unfuse(graph: &Graph) -> Cow<'_, Graph> {
    let mut rewritten: Vec<(Key, Task)> = Vec::new();
    let mut lifted: Vec<(Key, Task)> = Vec::new();
    for (key, task) in graph.iter() {
        if task.args.iter().any(nests_persisted) {
            let mut task = task.clone();
            for arg in &mut task.args {
                lift(arg, &mut lifted);
            }
            rewritten.push((key.clone(), task));
        }
    }
    if rewritten.is_empty() {
        return Cow::Borrowed(graph);
    }
    let mut graph = graph.clone();
    for (key, task) in rewritten.into_iter().chain(lifted) {
        graph.insert(key, task);
    }
    Cow::Owned(graph)
}

fn persisted_key(task: &Task) -> Option<Key> {
    (task.op.tag() == Some(PERSISTED_TAG))
        .then(|| postcard::from_bytes(&task.op.params()).ok())
        .flatten()
}

fn nests_persisted(arg: &Arg) -> bool {
    match arg {
        Arg::Task(t) => persisted_key(t).is_some() || t.args.iter().any(nests_persisted),
        Arg::List(items) => items.iter().any(nests_persisted),
        Arg::Key(_) | Arg::Value(_) => false,
    }
}

fn lift(arg: &mut Arg, lifted: &mut Vec<(Key, Task)>) {
    match arg {
        Arg::Task(t) => {
            if let Some(key) = persisted_key(t) {
                lifted.push((key.clone(), (**t).clone()));
                *arg = Arg::Key(key);
            } else {
                t.args.iter_mut().for_each(|a| lift(a, lifted));
            }
        }
        Arg::List(items) => items.iter_mut().for_each(|a| lift(a, lifted)),
        Arg::Key(_) | Arg::Value(_) => {}
    }
}
