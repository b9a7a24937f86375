//! Graph optimizations: [`cull`] to what outputs need, [`fuse`] linear chains.

use std::sync::Arc;

use crate::plan::Plan;
use crate::{Arg, Graph, Key, Result, Task};

/// The longest chain [`fuse`] folds into one task: fused tasks nest, and nesting
/// is evaluated recursively, so this bounds the stack a fused task needs.
pub const MAX_FUSED_CHAIN: usize = 64;

/// The part of `graph` that `outputs` need. Checks it as [`Plan::new`] does.
pub fn cull(graph: &Graph, outputs: &[Key]) -> Result<Graph> {
    let plan = Plan::new(graph, outputs)?;
    let mut culled = Graph::with_capacity(plan.len());
    for i in 0..plan.len() {
        culled.insert_shared(plan.key(i).clone(), plan.shared_task(i).clone());
    }
    Ok(culled)
}

/// Culls, then fuses linear chains: a task whose only dependency `d` is used once
/// by it, where `d` has no other dependent and is not in `keep`, absorbs `d` as a
/// nested task (chains up to [`MAX_FUSED_CHAIN`]). Literal data with a single
/// dependent is inlined as a value. Results never change: the fused task keeps
/// the key of the chain's last task and computes the same value.
pub fn fuse(graph: &Graph, keep: &[Key]) -> Result<Graph> {
    let plan = Plan::new(graph, keep)?;
    let n = plan.len();
    // fused[i]: task i with absorbed dependencies inlined; chain[i]: its chain length.
    let mut fused: Vec<Option<Arc<Task>>> = Vec::with_capacity(n);
    let mut chain = vec![1usize; n];
    let mut absorbed = vec![false; n];
    let absorbable = |d: usize, times_used: usize| {
        !plan.is_output(d) && plan.dependents(d).len() == 1 && times_used == 1
    };
    for i in 0..n {
        // Copy-on-write: an unchanged task stays shared with the input graph.
        let mut task = plan.shared_task(i).clone();
        let deps = plan.dependencies(i);
        let args = plan.args(i);
        // Inline single-use literal data.
        for &d in deps {
            let d = d as usize;
            let uses = args.iter().filter(|&&a| a as usize == d).count();
            if let Some(value) = plan.task(d).as_data() {
                if absorbable(d, uses) {
                    let key = plan.key(d);
                    Arc::make_mut(&mut task)
                        .map_keys(|k| (k == key).then(|| Arg::Value(value.clone())));
                    absorbed[d] = true;
                }
            }
        }
        // Absorb the single remaining dependency of a linear chain.
        let live: Vec<usize> = deps
            .iter()
            .map(|&d| d as usize)
            .filter(|&d| !absorbed[d])
            .collect();
        if let [d] = live[..] {
            if absorbable(d, args.iter().filter(|&&a| a as usize == d).count())
                && chain[d] < MAX_FUSED_CHAIN
            {
                let inner = fused[d].take().expect("dependency already fused");
                let key = plan.key(d);
                let mut inner = Some(Arc::unwrap_or_clone(inner));
                Arc::make_mut(&mut task).map_keys(|k| {
                    (k == key).then(|| Arg::Task(Box::new(inner.take().expect("used once"))))
                });
                absorbed[d] = true;
                chain[i] = chain[d] + 1;
            }
        }
        fused.push(Some(task));
    }
    let mut out = Graph::with_capacity(n);
    for (i, task) in fused.into_iter().enumerate() {
        if !absorbed[i] {
            out.insert_shared(plan.key(i).clone(), task.expect("unabsorbed task kept"));
        }
    }
    Ok(out)
}
