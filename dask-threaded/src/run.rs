//! One compute: the plan, the ready queue and the values, behind one mutex.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use dask_core::callbacks::{ActiveCallbacks, TaskEvent};
use dask_core::{Error, Plan, Result, Value};

use crate::pool::{Pool, SLOT};

/// A compute in progress, shared by its caller and the pool threads helping it.
pub(crate) struct Run {
    plan: Plan,
    state: Mutex<State>,
    /// The caller waits here when nothing is ready.
    wake: Condvar,
    /// How many pool threads may help at once.
    max_helpers: usize,
    /// Hooks around each task, when any are active.
    callbacks: Option<ActiveCallbacks>,
}

struct State {
    /// Ready tasks; the lowest index (highest priority) first.
    ready: BinaryHeap<Reverse<u32>>,
    /// Per task: dependencies not finished yet.
    missing: Vec<u32>,
    /// Per task: dependents not finished yet (the value is released at 0).
    dependents_left: Vec<u32>,
    values: Vec<Option<Value>>,
    finished: usize,
    running: usize,
    /// Pool threads working on this run, or asked to.
    helpers: usize,
    caller_waiting: bool,
    error: Option<Error>,
}

/// A finished task, handed back under the lock.
type Outcome = (usize, Result<Value>);

impl Run {
    /// Runs `plan` on the calling thread, with help from `pool`.
    pub(crate) fn execute(
        plan: Plan,
        pool: &Arc<Pool>,
        callbacks: Option<ActiveCallbacks>,
    ) -> Result<Vec<Value>> {
        let n = plan.len();
        let missing: Vec<u32> = (0..n).map(|i| plan.dependencies(i).len() as u32).collect();
        let ready = (0..n as u32)
            .filter(|&i| missing[i as usize] == 0)
            .map(Reverse)
            .collect();
        let dependents_left = (0..n).map(|i| plan.dependents(i).len() as u32).collect();
        let run = Arc::new(Run {
            state: Mutex::new(State {
                ready,
                missing,
                dependents_left,
                values: vec![None; n],
                finished: 0,
                running: 0,
                helpers: 0,
                caller_waiting: false,
                error: None,
            }),
            plan,
            wake: Condvar::new(),
            max_helpers: pool.helpers(),
            callbacks,
        });
        run.work(pool, true);
        let mut state = run.lock();
        if let Some(error) = state.error.take() {
            // Tasks still running elsewhere finish in the background; the values
            // computed so far are dropped now, not when the last helper leaves.
            let n = run.plan.len();
            let stale = std::mem::replace(&mut state.values, vec![None; n]);
            drop(state);
            drop(stale);
            return Err(error);
        }
        let values = std::mem::take(&mut state.values);
        drop(state);
        run.plan.take_outputs(values)
    }

    /// A pool thread's share: work while there is ready work, then leave.
    pub(crate) fn help(self: Arc<Self>, pool: &Arc<Pool>) {
        self.work(pool, false);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn work(self: &Arc<Self>, pool: &Arc<Pool>, is_caller: bool) {
        let plan = &self.plan;
        // Values released by `complete`, dropped outside the lock while the run
        // goes on, but under it when leaving: once we unlock for the last time
        // the caller may return, and no intermediate may outlive compute.
        let mut released: Vec<Value> = Vec::new();
        let mut outcome: Option<Outcome> = None;
        let mut state = self.lock();
        loop {
            if let Some((i, result)) = outcome.take() {
                self.complete(&mut state, i, result, &mut released);
            }
            if state.error.is_some() || state.finished == plan.len() {
                break;
            }
            let Some(Reverse(i)) = state.ready.pop() else {
                if !is_caller {
                    break;
                }
                if state.running == 0 {
                    state.error = Some(Error::Internal(format!(
                        "threaded scheduler stalled with {} of {} tasks finished and none ready",
                        state.finished,
                        plan.len()
                    )));
                    break;
                }
                state.caller_waiting = true;
                state = self
                    .wake
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                state.caller_waiting = false;
                continue;
            };
            let i = i as usize;
            let inputs: Vec<Value> = plan
                .args(i)
                .iter()
                .map(|&d| {
                    state.values[d as usize]
                        .clone()
                        .expect("dependency value kept until its dependents ran")
                })
                .collect();
            state.running += 1;
            self.spread(&mut state, pool);
            drop(state);
            released.clear();
            let mut inputs = inputs.into_iter();
            let task = plan.task(i);
            let event = self.callbacks.as_ref().map(|c| {
                let event = TaskEvent {
                    key: plan.key(i),
                    op: task.op.name(),
                    worker: if is_caller { 0 } else { SLOT.get() },
                };
                c.pretask(&event);
                (c, event)
            });
            let result = task.execute(plan.key(i), |_| {
                inputs.next().expect("plan lists every key argument")
            });
            drop(inputs);
            if let Some((c, event)) = event {
                c.posttask(&event, result.is_ok());
            }
            outcome = Some((i, result));
            state = self.lock();
        }
        if !is_caller {
            state.helpers -= 1;
        }
        // Every exit drops released values under the lock (see above).
        released.clear();
        drop(state);
    }

    /// Records a finished task: stores its value, readies its dependents,
    /// releases dependencies nobody needs any more.
    fn complete(
        &self,
        state: &mut State,
        i: usize,
        result: Result<Value>,
        released: &mut Vec<Value>,
    ) {
        let plan = &self.plan;
        state.running -= 1;
        match result {
            Ok(value) if state.error.is_some() => released.push(value),
            Ok(value) => {
                state.values[i] = Some(value);
                state.finished += 1;
                for &d in plan.dependents(i) {
                    let m = &mut state.missing[d as usize];
                    *m -= 1;
                    if *m == 0 {
                        state.ready.push(Reverse(d));
                    }
                }
                for &d in plan.dependencies(i) {
                    let d = d as usize;
                    state.dependents_left[d] -= 1;
                    if state.dependents_left[d] == 0 && !plan.is_output(d) {
                        released.extend(state.values[d].take());
                    }
                }
                if state.finished == plan.len() && state.caller_waiting {
                    self.wake.notify_one();
                }
            }
            Err(error) => {
                if state.error.is_none() {
                    state.error = Some(error);
                }
                if state.caller_waiting {
                    self.wake.notify_one();
                }
            }
        }
    }

    /// Hands ready work left after a pop to the waiting caller or to pool threads.
    fn spread(self: &Arc<Self>, state: &mut State, pool: &Arc<Pool>) {
        let mut extra = state.ready.len();
        if extra == 0 {
            return;
        }
        if state.caller_waiting {
            self.wake.notify_one();
            extra -= 1;
        }
        let wanted = extra.min(self.max_helpers - state.helpers);
        if wanted > 0 {
            state.helpers += wanted;
            pool.request_help(self, wanted);
        }
    }
}
