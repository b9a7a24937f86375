//! `visualize::to_dot` and `Collection::visualize`: valid graphviz dot text.

use std::collections::BTreeSet;

use dask_core::op::fn_op;
use dask_core::{delayed, visualize, Arg, Collection, Graph, Key, Task, Value};

/// The quoted ids of a dot line's nodes (`"a" [..]` or `"a" -> "b"`).
fn quoted(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '"' {
            let mut id = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => id.extend(chars.next()),
                    '"' => break,
                    c => id.push(c),
                }
            }
            out.push(id);
        }
    }
    out
}

/// Checks the dot text is well formed: one `digraph { .. }` block, balanced
/// braces and quotes, every edge between declared nodes. Returns the declared
/// node ids and the edges.
fn parse_dot(dot: &str) -> (BTreeSet<String>, Vec<(String, String)>) {
    assert!(dot.starts_with("digraph"), "{dot}");
    assert!(dot.trim_end().ends_with('}'), "{dot}");
    let opens = dot.matches('{').count();
    assert_eq!(opens, dot.matches('}').count(), "unbalanced braces:\n{dot}");
    let mut nodes = BTreeSet::new();
    let mut edges = Vec::new();
    for line in dot.lines().skip(1) {
        let line = line.trim();
        if line.is_empty() || line == "}" || !line.contains('"') {
            continue;
        }
        assert!(line.ends_with(';'), "statement without `;`: {line}");
        let unescaped_quotes = line.replace("\\\"", "").matches('"').count();
        assert_eq!(unescaped_quotes % 2, 0, "unbalanced quotes: {line}");
        let ids = quoted(line);
        if line.contains("->") {
            assert_eq!(ids.len(), 2, "{line}");
            edges.push((ids[0].clone(), ids[1].clone()));
        } else {
            assert!(line.contains('['), "{line}");
            nodes.insert(ids[0].clone());
        }
    }
    for (a, b) in &edges {
        assert!(
            nodes.contains(a) && nodes.contains(b),
            "edge {a} -> {b} to an undeclared node"
        );
    }
    (nodes, edges)
}

#[test]
fn dot_of_a_hand_built_graph_has_every_key_and_edge() {
    let mut g = Graph::new();
    g.insert_data(Key::new("x", [0]), Value::new(1i64));
    g.insert_data(Key::named("weird \"quoted\" \\ name"), Value::new(2i64));
    let add = fn_op(|a: i64, b: i64| a + b);
    g.insert(
        Key::new("y", [0, 1]),
        Task::new(
            add.clone(),
            vec![
                Arg::Key(Key::new("x", [0])),
                Arg::Key(Key::named("weird \"quoted\" \\ name")),
            ],
        ),
    );
    g.insert(
        Key::named("z"),
        Task::new(
            add,
            vec![
                Arg::Key(Key::new("y", [0, 1])),
                Arg::Key(Key::new("y", [0, 1])),
            ],
        ),
    );
    let dot = visualize::to_dot(&g);
    let (nodes, edges) = parse_dot(&dot);
    for key in g.keys() {
        assert!(
            nodes.contains(&key.to_string()),
            "{key} missing from\n{dot}"
        );
    }
    // Every dependency edge appears (through the dependent's op node).
    for (key, task) in g.iter() {
        for dep in task.dependencies() {
            let reaches = edges.iter().any(|(a, b)| {
                a == &dep.to_string() && edges.iter().any(|(c, d)| c == b && d == &key.to_string())
            });
            assert!(reaches, "no edge from {dep} to {key} in\n{dot}");
        }
    }
    // Deterministic.
    assert_eq!(dot, visualize::to_dot(&g.clone()));
}

#[test]
fn collection_visualize_shows_the_whole_delayed_graph() {
    let a = delayed(|x: i64| x + 1).call((1,));
    let b = delayed(|x: i64| x * 2).call((&a,));
    let c = delayed(|x: i64, y: i64| x - y).call((&a, &b));
    let dot = c.visualize();
    let (nodes, _) = parse_dot(&dot);
    for d in [a.key(), b.key(), c.key()] {
        assert!(nodes.contains(&d.to_string()), "{d} missing from\n{dot}");
        assert!(dot.contains(&d.to_string()));
    }
}

#[test]
fn dot_of_an_empty_graph_is_valid() {
    let dot = visualize::to_dot(&Graph::new());
    let (nodes, edges) = parse_dot(&dot);
    assert!(nodes.is_empty() && edges.is_empty());
}
