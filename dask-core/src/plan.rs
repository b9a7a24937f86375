//! [`Plan`]: a graph indexed for execution. Validation, culling and ordering in
//! one depth-first pass; every scheduler runs from a plan.

use std::collections::HashMap;
use std::sync::Arc;

use crate::{Error, Graph, Key, KeyBuildHasher, Result, Task, Value};

/// Compressed rows: `row(i)` is a slice of task indices.
#[derive(Debug, Default, Clone)]
pub struct Rows {
    offsets: Vec<u32>,
    items: Vec<u32>,
}

impl Rows {
    fn with_capacity(rows: usize, items: usize) -> Rows {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        Rows {
            offsets,
            items: Vec::with_capacity(items),
        }
    }

    fn push_row(&mut self, row: &[u32]) {
        self.items.extend_from_slice(row);
        self.offsets.push(self.items.len() as u32);
    }

    /// The items of row `i`.
    #[inline]
    pub fn row(&self, i: usize) -> &[u32] {
        &self.items[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Whether there is no row.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

const IN_PROGRESS: u32 = u32::MAX;

/// A task being visited by the depth-first walk of [`Plan::new`].
struct Frame<'g> {
    key: &'g Key,
    task: &'g Arc<Task>,
    /// Next position in the key stack to visit.
    next: usize,
    key_start: usize,
    key_end: usize,
    /// Where this task's argument indices start on the index stack.
    idx_start: usize,
}

/// A graph culled to what some outputs need, checked, and numbered in execution
/// order.
///
/// Task `i` is the `i`-th in a depth-first post-order from the outputs (in the
/// order given, dependencies in argument order): a topological order that
/// finishes one branch before starting the next, like `dask.order`, so running
/// tasks by ascending index keeps few intermediates alive. The index is the
/// task's priority: lower runs first.
///
/// A plan owns its keys and (shared) tasks, so it can move to other threads.
pub struct Plan {
    keys: Vec<Key>,
    tasks: Vec<Arc<Task>>,
    args: Rows,
    deps: Rows,
    dependents: Rows,
    outputs: Vec<u32>,
    is_output: Vec<bool>,
}

impl Plan {
    /// Indexes the part of `graph` that `outputs` need.
    ///
    /// Errors: [`Error::NoOutputs`], [`Error::MissingOutput`],
    /// [`Error::MissingDependency`], [`Error::Cycle`].
    pub fn new<'g>(graph: &'g Graph, outputs: &[Key]) -> Result<Plan> {
        if outputs.is_empty() {
            return Err(Error::NoOutputs);
        }
        let mut state: HashMap<&'g Key, u32, KeyBuildHasher> =
            HashMap::with_capacity_and_hasher(graph.len(), KeyBuildHasher::default());
        let mut keys: Vec<Key> = Vec::new();
        let mut tasks: Vec<Arc<Task>> = Vec::new();
        let mut args = Rows::with_capacity(graph.len().min(1 << 20), graph.len().min(1 << 20));
        let mut frames: Vec<Frame<'g>> = Vec::new();
        let mut key_stack: Vec<&'g Key> = Vec::new();
        let mut idx_stack: Vec<u32> = Vec::new();

        let push_frame = |frames: &mut Vec<Frame<'g>>,
                          key_stack: &mut Vec<&'g Key>,
                          idx_stack: &Vec<u32>,
                          key: &'g Key,
                          task: &'g Arc<Task>| {
            let key_start = key_stack.len();
            task.for_each_key(&mut |k| key_stack.push(k));
            frames.push(Frame {
                key,
                task,
                next: key_start,
                key_start,
                key_end: key_stack.len(),
                idx_start: idx_stack.len(),
            });
        };

        for out in outputs {
            if state.contains_key(out) {
                continue;
            }
            let Some((root, task)) = graph.get_key_value(out) else {
                return Err(Error::MissingOutput { key: out.clone() });
            };
            state.insert(root, IN_PROGRESS);
            push_frame(&mut frames, &mut key_stack, &idx_stack, root, task);
            while let Some(frame) = frames.last_mut() {
                if frame.next < frame.key_end {
                    let dep = key_stack[frame.next];
                    frame.next += 1;
                    match state.get(dep) {
                        Some(&IN_PROGRESS) => return Err(cycle_error(&frames, dep)),
                        Some(&i) => idx_stack.push(i),
                        None => {
                            let Some((dep, task)) = graph.get_key_value(dep) else {
                                return Err(Error::MissingDependency {
                                    key: frame.key.clone(),
                                    missing: dep.clone(),
                                });
                            };
                            state.insert(dep, IN_PROGRESS);
                            push_frame(&mut frames, &mut key_stack, &idx_stack, dep, task);
                        }
                    }
                } else {
                    let frame = frames.pop().expect("frame present");
                    let idx = keys.len() as u32;
                    keys.push(frame.key.clone());
                    tasks.push(frame.task.clone());
                    args.push_row(&idx_stack[frame.idx_start..]);
                    idx_stack.truncate(frame.idx_start);
                    key_stack.truncate(frame.key_start);
                    state.insert(frame.key, idx);
                    if !frames.is_empty() {
                        idx_stack.push(idx);
                    }
                }
            }
        }

        let n = keys.len();
        let mut deps = Rows::with_capacity(n, args.items.len());
        let mut mark = vec![u32::MAX; n];
        let mut row = Vec::new();
        let mut n_dependents = vec![0u32; n];
        for i in 0..n {
            row.clear();
            for &d in args.row(i) {
                if mark[d as usize] != i as u32 {
                    mark[d as usize] = i as u32;
                    row.push(d);
                    n_dependents[d as usize] += 1;
                }
            }
            deps.push_row(&row);
        }
        let mut dependents = Rows::with_capacity(n, deps.items.len());
        let mut offset = 0u32;
        for count in &n_dependents {
            offset += count;
            dependents.offsets.push(offset);
        }
        dependents.items = vec![0; deps.items.len()];
        let mut fill: Vec<u32> = dependents.offsets[..n].to_vec();
        for i in 0..n {
            for &d in deps.row(i) {
                dependents.items[fill[d as usize] as usize] = i as u32;
                fill[d as usize] += 1;
            }
        }
        let mut is_output = vec![false; n];
        let outputs: Vec<u32> = outputs
            .iter()
            .map(|k| {
                let i = state[k];
                is_output[i as usize] = true;
                i
            })
            .collect();
        Ok(Plan {
            keys,
            tasks,
            args,
            deps,
            dependents,
            outputs,
            is_output,
        })
    }

    /// Number of tasks the outputs need.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the plan has no task (never true: a plan has outputs).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key of task `i`.
    #[inline]
    pub fn key(&self, i: usize) -> &Key {
        &self.keys[i]
    }

    /// Task `i`.
    #[inline]
    pub fn task(&self, i: usize) -> &Task {
        &self.tasks[i]
    }

    /// Task `i`, shared.
    #[inline]
    pub fn shared_task(&self, i: usize) -> &Arc<Task> {
        &self.tasks[i]
    }

    /// The tasks whose values task `i` reads, in argument order, repeats included
    /// (the order [`Task::execute`] asks for them).
    #[inline]
    pub fn args(&self, i: usize) -> &[u32] {
        self.args.row(i)
    }

    /// The distinct dependencies of task `i`.
    #[inline]
    pub fn dependencies(&self, i: usize) -> &[u32] {
        self.deps.row(i)
    }

    /// The distinct dependents of task `i`.
    #[inline]
    pub fn dependents(&self, i: usize) -> &[u32] {
        self.dependents.row(i)
    }

    /// The outputs' task indices, in the order asked for (repeats kept).
    pub fn outputs(&self) -> &[u32] {
        &self.outputs
    }

    /// Whether task `i` is an output (its value is kept to the end).
    #[inline]
    pub fn is_output(&self, i: usize) -> bool {
        self.is_output[i]
    }

    /// The keys in execution order.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// The outputs' values in the order asked for, from the per-task values of a
    /// finished run. A value is moved out on its last use, so one nobody else
    /// holds stays unique (no clone when a collection finalizes it).
    pub fn take_outputs(&self, mut values: Vec<Option<Value>>) -> Result<Vec<Value>> {
        let mut uses = vec![0u32; self.len()];
        for &o in &self.outputs {
            uses[o as usize] += 1;
        }
        self.outputs
            .iter()
            .map(|&o| {
                let o = o as usize;
                uses[o] -= 1;
                let v = if uses[o] == 0 {
                    values[o].take()
                } else {
                    values[o].clone()
                };
                v.ok_or_else(|| {
                    Error::Internal(format!("output {} was not computed", self.keys[o]))
                })
            })
            .collect()
    }
}

fn cycle_error(frames: &[Frame<'_>], dep: &Key) -> Error {
    let start = frames.iter().position(|f| f.key == dep).unwrap_or(0);
    let mut keys: Vec<Key> = frames[start..].iter().map(|f| f.key.clone()).collect();
    keys.push(dep.clone());
    Error::Cycle { keys }
}

/// Priorities for `graph`'s tasks that `outputs` need (lower runs first): the
/// order of [`Plan`]. Like `dask.order.order`.
pub fn order(graph: &Graph, outputs: &[Key]) -> Result<crate::KeyMap<u32>> {
    let plan = Plan::new(graph, outputs)?;
    Ok(plan
        .keys()
        .iter()
        .enumerate()
        .map(|(i, k)| (k.clone(), i as u32))
        .collect())
}
