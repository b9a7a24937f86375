//! The threaded scheduler, the default: a pool of threads in this process runs
//! independent tasks at the same time, sharing memory (nothing is copied or
//! serialized). Best when tasks release the CPU to each other well: numeric
//! kernels (ndarray, polars) and I/O.
//!
//! Shows: the default `compute()`, choosing a scheduler and its thread count
//! per call with `compute_with`, a scoped default with `config::set` (Dask's
//! `with dask.config.set(scheduler=...)`), by name, and a process-wide default
//! with `config::set_global`. Every answer is checked against the sync
//! scheduler and plain Rust.
//!
//! Run: `cargo run --example scheduler_threaded`

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use dask::callbacks::{self, Callback, TaskEvent};
use dask::prelude::*;

/// A deliberately slow-ish task: the sum of squares below `n`.
fn work(n: u64) -> u64 {
    (0..n).map(|i| i * i % 7).sum()
}

fn add_all(xs: Vec<u64>) -> u64 {
    xs.iter().sum()
}

/// Records which pool thread ran each task (0 is the calling thread).
#[derive(Default)]
struct Threads(Mutex<BTreeSet<usize>>);

impl Callback for Threads {
    fn pretask(&self, task: &TaskEvent<'_>) {
        self.0.lock().expect("not poisoned").insert(task.worker);
    }
}

fn main() -> dask::Result<()> {
    // 16 independent tasks and one that adds their results.
    let parts: Vec<Delayed<u64>> = (0..16)
        .map(|i| delayed(work).call((200_000 + i,)))
        .collect();
    let total = delayed(add_all).call((parts,));
    let want: u64 = (0..16).map(|i| work(200_000 + i)).sum(); // plain Rust
    let reference = total.compute_with(&SyncScheduler::new())?; // one thread, in order
    assert_eq!(reference, want);

    // 1. The default: `compute()` uses a threaded scheduler with one thread
    //    per core, unless something below says otherwise.
    println!(
        "default scheduler: {}",
        dask::config::default_scheduler()?.name()
    );
    assert_eq!(total.compute()?, want);

    // 2. Per call: build a scheduler with the threads you want and pass it.
    //    A ThreadedScheduler keeps its pool; reuse it across computes.
    for threads in [1, 2, 4] {
        let pool = ThreadedScheduler::with_threads(threads)?;
        let seen = Arc::new(Threads::default());
        let guard = callbacks::register(seen.clone());
        assert_eq!(total.compute_with(&pool)?, want);
        drop(guard);
        let used = seen.0.lock().expect("not poisoned").clone();
        println!("{threads} thread(s): tasks ran on threads {used:?}");
        assert!(
            used.iter().all(|&t| t < threads),
            "a thread outside the pool"
        );
    }
    // Zero threads is a typed error, not a panic.
    let err = ThreadedScheduler::with_threads(0).unwrap_err();
    println!("with_threads(0): {err}");

    // 3. A scoped default: every compute on this thread uses the sync
    //    scheduler while the guard lives, like `with dask.config.set(...)`.
    {
        let _scope = dask::config::set(SyncScheduler::new());
        assert_eq!(dask::config::default_scheduler()?.name(), "sync");
        assert_eq!(total.compute()?, want);
    }
    assert_eq!(dask::config::default_scheduler()?.name(), "threaded");
    // The same by name ("sync", "threads"); an unknown name is an error.
    {
        let _scope = dask::config::set_by_name("threads")?;
        assert_eq!(total.compute()?, want);
    }
    match dask::config::set_by_name("gpu") {
        Ok(_) => panic!("no scheduler is called gpu"),
        Err(e) => println!("set_by_name(\"gpu\"): {e}"),
    }

    // 4. Process-wide: the default of every thread until cleared (a scoped
    //    setting still wins inside its scope). Checked from another thread.
    dask::config::set_global(SyncScheduler::new());
    let other_thread = std::thread::spawn({
        let total = total.clone();
        move || -> dask::Result<(u64, String)> {
            let name = dask::config::default_scheduler()?.name().to_owned();
            Ok((total.compute()?, name))
        }
    })
    .join()
    .expect("the thread finished");
    assert_eq!(other_thread?, (want, "sync".to_owned()));
    dask::config::clear_global();
    assert_eq!(dask::config::default_scheduler()?.name(), "threaded");

    // 5. Several results in one call share their common tasks: each `work`
    //    runs once although both outputs need it.
    let squares = delayed(|x: u64| x * x).call((&total,));
    let (t, s) = dask::compute((&total, &squares))?;
    assert_eq!((t, s), (want, want * want));
    println!("total = {t}, total^2 = {s}");

    println!("ok: scheduler_threaded");
    Ok(())
}
