//! Graphviz dot output of a graph, like `dask.visualize`.

use std::fmt::Write;

use crate::Graph;

/// The graph in graphviz dot: a box per key, an ellipse per op call, edges from
/// the keys a task reads to its op and from the op to its key. Deterministic
/// (keys sorted).
///
/// ```
/// use dask_core::{Graph, Key, Value};
/// let mut g = Graph::new();
/// g.insert_data(Key::named("x"), Value::new(1));
/// assert!(dask_core::visualize::to_dot(&g).starts_with("digraph"));
/// ```
pub fn to_dot(graph: &Graph) -> String {
    let mut out = String::from("digraph dask {\n  rankdir=BT;\n");
    for key in graph.sorted_keys() {
        let task = graph.get(&key).expect("key from the graph");
        let id = escape(&key.to_string());
        let _ = writeln!(
            out,
            "  \"{id}\" [shape=box, label=\"{}\"];",
            escape(&short_label(&key))
        );
        if task.as_data().is_some() {
            continue;
        }
        let _ = writeln!(
            out,
            "  \"op:{id}\" [shape=ellipse, label=\"{}\"];",
            escape(task.op.name())
        );
        let _ = writeln!(out, "  \"op:{id}\" -> \"{id}\";");
        for dep in task.dependencies() {
            let _ = writeln!(out, "  \"{}\" -> \"op:{id}\";", escape(&dep.to_string()));
        }
    }
    out.push_str("}\n");
    out
}

fn short_label(key: &crate::Key) -> String {
    let name = key.name();
    // Drop a trailing token (`add-3f2a...`) for readability; the id keeps it.
    let short = match name.rsplit_once('-') {
        Some((prefix, token))
            if token.len() >= 8 && token.chars().all(|c| c.is_ascii_hexdigit()) =>
        {
            prefix
        }
        _ => name,
    };
    if key.index().is_empty() {
        short.to_owned()
    } else {
        let idx: Vec<String> = key.index().iter().map(u64::to_string).collect();
        format!("{short}, {}", idx.join(", "))
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}
