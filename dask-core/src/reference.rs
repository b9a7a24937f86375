//! A naive reference evaluator, the oracle for scheduler tests (like `dask.core.get`).
//!
//! Deliberately simple and independent of [`Plan`](crate::Plan): a depth-first
//! evaluation with a memo table, no priorities, no releasing, no threads.

use crate::{Error, Graph, Key, KeyMap, Result, Value};

/// Evaluates `outputs` of `graph` one by one, dependencies first.
///
/// Errors are the same typed errors the schedulers give (missing key, cycle,
/// failing task); with several failing tasks it reports the first met in
/// depth-first order from the outputs, dependencies in argument order.
pub fn get(graph: &Graph, outputs: &[Key]) -> Result<Vec<Value>> {
    if outputs.is_empty() {
        return Err(Error::NoOutputs);
    }
    let mut memo: KeyMap<Value> = KeyMap::default();
    let mut results = Vec::with_capacity(outputs.len());
    for out in outputs {
        if !graph.contains(out) {
            return Err(Error::MissingOutput { key: out.clone() });
        }
        evaluate(graph, out, &mut memo)?;
        results.push(memo[out].clone());
    }
    Ok(results)
}

fn evaluate(graph: &Graph, root: &Key, memo: &mut KeyMap<Value>) -> Result<()> {
    // Explicit stack of (key, expanded?) so deep chains do not overflow.
    let mut stack: Vec<(Key, bool)> = vec![(root.clone(), false)];
    let mut on_path: Vec<Key> = Vec::new();
    while let Some((key, expanded)) = stack.pop() {
        if memo.contains_key(&key) {
            continue;
        }
        let task = graph.get(&key).expect("checked by the caller");
        if !expanded {
            if let Some(pos) = on_path.iter().position(|k| *k == key) {
                let mut keys = on_path[pos..].to_vec();
                keys.push(key);
                return Err(Error::Cycle { keys });
            }
            on_path.push(key.clone());
            stack.push((key.clone(), true));
            let deps = task.dependencies();
            for dep in deps.iter().rev() {
                if !graph.contains(dep) {
                    return Err(Error::MissingDependency {
                        key,
                        missing: dep.clone(),
                    });
                }
                if !memo.contains_key(dep) {
                    stack.push((dep.clone(), false));
                }
            }
        } else {
            let value = task.execute(&key, |k| memo[k].clone())?;
            memo.insert(key.clone(), value);
            if let Some(pos) = on_path.iter().rposition(|k| *k == key) {
                on_path.truncate(pos);
            }
        }
    }
    Ok(())
}
