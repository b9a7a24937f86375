//! The synchronous scheduler, for debugging: it runs every task in the calling
//! thread, one at a time, in a fixed order. A breakpoint or a `println!` in a
//! task behaves as in plain sequential code, and the result is the reference
//! every other scheduler must agree with.
//!
//! Shows: computing on the sync scheduler, comparing with the default
//! (threaded) one, stepping through the tasks with a callback that prints
//! each one, and the typed error a failing task gives.
//!
//! Run: `cargo run --example scheduler_sync`

use std::sync::{Arc, Mutex};

use dask::callbacks::{self, Callback, RunInfo, TaskEvent};
use dask::prelude::*;

fn load(part: i64) -> Vec<i64> {
    (part * 10..part * 10 + 10).collect()
}

fn clean(xs: Vec<i64>) -> Vec<i64> {
    xs.into_iter().filter(|x| x % 3 != 0).collect()
}

fn total(parts: Vec<Vec<i64>>) -> i64 {
    parts.iter().flatten().sum()
}

/// A callback that prints each task as it starts and ends, and keeps the
/// order (the `with Callback(pretask=print)` of Dask).
#[derive(Default)]
struct Stepper {
    order: Mutex<Vec<String>>,
}

impl Callback for Stepper {
    fn start(&self, info: &RunInfo) {
        println!("  [{}] {} tasks to run", info.scheduler, info.n_tasks);
    }
    fn pretask(&self, task: &TaskEvent<'_>) {
        println!("  -> {} ({})", task.key, task.op);
    }
    fn posttask(&self, task: &TaskEvent<'_>, ok: bool) {
        println!("  <- {} {}", task.key, if ok { "ok" } else { "FAILED" });
        self.order
            .lock()
            .expect("not poisoned")
            .push(task.key.to_string());
    }
}

fn main() -> dask::Result<()> {
    // A small pipeline: load 4 parts, clean each, sum them all.
    let parts: Vec<Delayed<Vec<i64>>> = (0..4)
        .map(|p| {
            let raw = delayed(load).call((p,));
            delayed(clean).call((&raw,))
        })
        .collect();
    let sum = delayed(total).call((parts,));

    // 1. Pick the sync scheduler for one call. The answer equals what plain
    //    sequential code gives, and what the default (threaded) scheduler gives.
    let sync = SyncScheduler::new();
    let want: i64 = (0..40).filter(|x| x % 3 != 0).sum();
    assert_eq!(sum.compute_with(&sync)?, want);
    assert_eq!(sum.compute()?, want);
    println!("sum = {want} on the sync and on the threaded scheduler");

    // 2. Step through it: callbacks see every task start and end. On the sync
    //    scheduler they come one at a time, in the same order on every run.
    println!("stepping:");
    let stepper = Arc::new(Stepper::default());
    let first_order = {
        let _guard = callbacks::register(stepper.clone()); // active while alive
        sum.compute_with(&sync)?;
        std::mem::take(&mut *stepper.order.lock().expect("not poisoned"))
    };
    // 5 tasks, not 9: before running, the graph is optimized, and each
    // linear chain `load -> clean` is fused into one task.
    assert_eq!(first_order.len(), 5, "4 fused load+clean tasks, 1 total");
    // Callbacks are off once the guard drops; register again: same order.
    let guard = callbacks::register(stepper.clone());
    sum.compute_with(&sync)?;
    drop(guard);
    assert_eq!(*stepper.order.lock().expect("not poisoned"), first_order);
    println!("the sync scheduler ran the 5 tasks in the same order twice");

    // 3. A failing task. `try_delayed` wraps a function returning a Result;
    //    its Err fails the task, and compute returns a typed error naming the
    //    task's key and op, with the original error as its source.
    let parse = dask::try_delayed(|s: String| s.trim().parse::<i64>());
    let bad = parse.call(("12x".to_string(),));
    match bad.compute_with(&sync) {
        Ok(v) => panic!("parsing \"12x\" gave {v}"),
        Err(dask::Error::TaskFailed {
            key, op, message, ..
        }) => {
            println!("a failing task: key {key}, op `{op}`: {message}");
            assert_eq!(key, *bad.key(), "the error names the task that failed");
            assert!(message.contains("invalid digit"), "{message}");
        }
        Err(other) => panic!("expected TaskFailed, got {other}"),
    }
    // A task depending on it fails with the same cause. (Here `bad -> doubled`
    // is a linear chain, fused into one task: the error names that task,
    // which carries the key of the chain's end, `doubled`.)
    let doubled = delayed(|x: i64| x * 2).call((&bad,));
    let err = doubled.compute_with(&sync).unwrap_err();
    println!("{err}"); // the whole error, as `?` or `{}` would print it
    assert!(err.to_string().contains("invalid digit"), "{err}");
    // A good input goes through the same graph shape.
    let good = parse.call((" 21 ".to_string(),));
    assert_eq!(
        delayed(|x: i64| x * 2).call((&good,)).compute_with(&sync)?,
        42
    );

    println!("ok: scheduler_sync");
    Ok(())
}
