//! [`Graph`]: a map from key to task, Dask's "graph spec".

use std::sync::Arc;

use crate::plan::Plan;
use crate::{Key, KeyMap, Result, Task, Value};

/// A task graph: every key maps to the task that computes it (tasks are shared
/// `Arc`s, so cloning, merging and culling graphs copies no task).
///
/// Plain data, like Dask's dict: build it by inserting tasks, hand it to a
/// [`Scheduler`](crate::Scheduler) with the keys you want.
///
/// ```
/// use dask_core::{op::fn_op, Arg, Graph, Key, Task, Value};
/// let mut g = Graph::new();
/// g.insert(Key::named("x"), Task::data(Value::new(1i64)));
/// g.insert(Key::named("y"), Task::new(fn_op(|x: i64| x + 1), vec![Arg::Key(Key::named("x"))]));
/// g.validate().unwrap();
/// let out = dask_core::reference::get(&g, &[Key::named("y")]).unwrap();
/// assert_eq!(*out[0].downcast_ref::<i64>().unwrap(), 2);
/// ```
#[derive(Clone, Default, Debug)]
pub struct Graph {
    tasks: KeyMap<Arc<Task>>,
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Graph {
        Graph::default()
    }

    /// An empty graph with room for `n` tasks.
    pub fn with_capacity(n: usize) -> Graph {
        Graph {
            tasks: KeyMap::with_capacity_and_hasher(n, Default::default()),
        }
    }

    /// Adds (or replaces) the task for `key`; returns the task it replaced.
    pub fn insert(&mut self, key: Key, task: Task) -> Option<Arc<Task>> {
        self.tasks.insert(key, Arc::new(task))
    }

    /// Adds a task shared with another graph (no copy).
    pub fn insert_shared(&mut self, key: Key, task: Arc<Task>) -> Option<Arc<Task>> {
        self.tasks.insert(key, task)
    }

    /// Adds a literal value under `key`.
    pub fn insert_data(&mut self, key: Key, value: Value) -> Option<Arc<Task>> {
        self.insert(key, Task::data(value))
    }

    /// The task for `key`.
    pub fn get(&self, key: &Key) -> Option<&Task> {
        self.tasks.get(key).map(|t| &**t)
    }

    /// The shared task for `key`.
    pub fn get_shared(&self, key: &Key) -> Option<&Arc<Task>> {
        self.tasks.get(key)
    }

    /// The stored key and task for `key`.
    pub fn get_key_value(&self, key: &Key) -> Option<(&Key, &Arc<Task>)> {
        self.tasks.get_key_value(key)
    }

    /// Whether the graph has a task for `key`.
    pub fn contains(&self, key: &Key) -> bool {
        self.tasks.contains_key(key)
    }

    /// Removes the task for `key`.
    pub fn remove(&mut self, key: &Key) -> Option<Arc<Task>> {
        self.tasks.remove(key)
    }

    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether the graph has no task.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// The tasks, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&Key, &Task)> {
        self.tasks.iter().map(|(k, t)| (k, &**t))
    }

    /// The keys, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = &Key> {
        self.tasks.keys()
    }

    /// The keys, sorted.
    pub fn sorted_keys(&self) -> Vec<Key> {
        let mut keys: Vec<Key> = self.tasks.keys().cloned().collect();
        keys.sort();
        keys
    }

    /// Adds every task of `other` (its tasks win on equal keys).
    pub fn merge(&mut self, other: &Graph) {
        self.tasks.reserve(other.len());
        for (k, t) in other.tasks.iter() {
            self.tasks.insert(k.clone(), t.clone());
        }
    }

    /// Checks the whole graph: every dependency exists and there is no cycle.
    /// Errors are [`Error::MissingDependency`](crate::Error::MissingDependency) and
    /// [`Error::Cycle`](crate::Error::Cycle), naming the keys.
    pub fn validate(&self) -> Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        let all = self.sorted_keys();
        Plan::new(self, &all).map(|_| ())
    }

    /// For each key, its distinct dependencies.
    pub fn dependencies(&self) -> KeyMap<Vec<Key>> {
        self.iter()
            .map(|(k, t)| (k.clone(), t.dependencies()))
            .collect()
    }

    /// For each key, the keys that depend on it (keys nothing depends on map to `[]`).
    pub fn dependents(&self) -> KeyMap<Vec<Key>> {
        let mut out: KeyMap<Vec<Key>> = self.keys().map(|k| (k.clone(), Vec::new())).collect();
        for (k, t) in self.iter() {
            for d in t.dependencies() {
                out.entry(d).or_default().push(k.clone());
            }
        }
        out
    }
}

impl FromIterator<(Key, Task)> for Graph {
    fn from_iter<I: IntoIterator<Item = (Key, Task)>>(iter: I) -> Graph {
        Graph {
            tasks: iter.into_iter().map(|(k, t)| (k, Arc::new(t))).collect(),
        }
    }
}

impl Extend<(Key, Task)> for Graph {
    fn extend<I: IntoIterator<Item = (Key, Task)>>(&mut self, iter: I) {
        self.tasks
            .extend(iter.into_iter().map(|(k, t)| (k, Arc::new(t))))
    }
}

impl IntoIterator for Graph {
    type Item = (Key, Arc<Task>);
    type IntoIter = std::collections::hash_map::IntoIter<Key, Arc<Task>>;
    fn into_iter(self) -> Self::IntoIter {
        self.tasks.into_iter()
    }
}
