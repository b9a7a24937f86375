//! [`HighLevelGraph`]: a graph kept as named layers with dependencies between them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::{Graph, Key, KeySet};

/// One layer: the tasks of one operation (e.g. every chunk of `x + 1`) and the
/// layers it reads from.
#[derive(Clone, Debug)]
pub struct Layer {
    /// The layer's tasks, shared between every collection built on it.
    pub graph: Arc<Graph>,
    /// Names of the layers this layer's tasks depend on.
    pub dependencies: BTreeSet<Arc<str>>,
}

/// A task graph as named layers, like `dask.highlevelgraph.HighLevelGraph`.
///
/// Collections add one layer per operation and share the layers of their
/// inputs (cloning is cheap: layers are `Arc`s), so a graph can be culled layer
/// by layer before it is flattened into one [`Graph`].
///
/// ```
/// use dask_core::{Graph, HighLevelGraph, Key, Task, Value};
/// let mut g = Graph::new();
/// g.insert_data(Key::new("x", [0]), Value::new(1i64));
/// let hlg = HighLevelGraph::from_layer("x", g, &[]);
/// assert_eq!(hlg.len(), 1);
/// assert!(hlg.layer("x").is_some());
/// ```
#[derive(Clone, Debug, Default)]
pub struct HighLevelGraph {
    layers: BTreeMap<Arc<str>, Layer>,
}

impl HighLevelGraph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// A graph with one new layer `name` on top of `inputs` (whose layers it keeps
    /// and depends on).
    pub fn from_layer(name: impl Into<Arc<str>>, graph: Graph, inputs: &[&HighLevelGraph]) -> Self {
        let mut out = HighLevelGraph::merge(inputs.iter().copied());
        let dependencies = inputs
            .iter()
            .flat_map(|g| g.top_layers())
            .collect::<BTreeSet<_>>();
        out.layers.insert(
            name.into(),
            Layer {
                graph: Arc::new(graph),
                dependencies,
            },
        );
        out
    }

    /// The union of several graphs' layers (equal names are the same layer: names
    /// come from tokens of their inputs).
    pub fn merge<'a>(graphs: impl IntoIterator<Item = &'a HighLevelGraph>) -> Self {
        let mut out = HighLevelGraph::new();
        for g in graphs {
            for (name, layer) in &g.layers {
                out.layers
                    .entry(name.clone())
                    .or_insert_with(|| layer.clone());
            }
        }
        out
    }

    /// Adds (or replaces) a layer.
    pub fn insert_layer(&mut self, name: impl Into<Arc<str>>, layer: Layer) {
        self.layers.insert(name.into(), layer);
    }

    /// The layer called `name`.
    pub fn layer(&self, name: &str) -> Option<&Layer> {
        self.layers.get(name)
    }

    /// The layers by name.
    pub fn layers(&self) -> impl Iterator<Item = (&Arc<str>, &Layer)> {
        self.layers.iter()
    }

    /// Names of the layers no other layer depends on.
    pub fn top_layers(&self) -> Vec<Arc<str>> {
        let depended: BTreeSet<&Arc<str>> =
            self.layers.values().flat_map(|l| &l.dependencies).collect();
        self.layers
            .keys()
            .filter(|n| !depended.contains(n))
            .cloned()
            .collect()
    }

    /// Total number of tasks in all layers.
    pub fn len(&self) -> usize {
        self.layers.values().map(|l| l.graph.len()).sum()
    }

    /// Whether there is no task.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps only the layers `keys` can need: the layers holding them and,
    /// transitively, the layers those depend on. Keys found in no layer are left
    /// for the key-level cull to report.
    pub fn cull_layers(&self, keys: &[Key]) -> Self {
        let mut wanted: Vec<Arc<str>> = Vec::new();
        let names: KeySet = keys.iter().cloned().collect();
        for (name, layer) in &self.layers {
            if names.iter().any(|k| layer.graph.contains(k)) {
                wanted.push(name.clone());
            }
        }
        let mut out = HighLevelGraph::new();
        while let Some(name) = wanted.pop() {
            if out.layers.contains_key(&name) {
                continue;
            }
            if let Some(layer) = self.layers.get(&name) {
                wanted.extend(layer.dependencies.iter().cloned());
                out.layers.insert(name, layer.clone());
            }
        }
        out
    }

    /// Flattens the layers into one graph.
    pub fn to_graph(&self) -> Graph {
        let mut layers = self.layers.values();
        let Some(first) = layers.next() else {
            return Graph::new();
        };
        let mut graph = Graph::clone(&first.graph);
        for layer in layers {
            graph.merge(&layer.graph);
        }
        graph
    }
}

impl From<Graph> for HighLevelGraph {
    fn from(graph: Graph) -> Self {
        HighLevelGraph::from_layer("graph", graph, &[])
    }
}
