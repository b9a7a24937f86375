//! The distributed scheduler: a scheduler and workers that talk over TCP,
//! here started in this process (a `LocalCluster`), or on other processes or
//! machines. A `Client` submits work to it and is itself a scheduler, so any
//! collection computes on the cluster with `compute_with(&client)`.
//!
//! Shows: starting a LocalCluster (what `Client::new()` does with default
//! settings), futures with submit / map / gather, futures as inputs of other
//! futures, a task's error, and `compute_with(&client)` for a dask.array and
//! a delayed graph, each checked against the sync scheduler.
//!
//! Run: `cargo run --example scheduler_distributed`
//!
//! On processes started by hand (each command in its own terminal, or on
//! other hosts with the scheduler's address):
//!
//! ```text
//! cargo run -p dask --bin dask -- scheduler --port 8786   # prints: scheduler at 127.0.0.1:8786
//! cargo run -p dask --bin dask -- worker 127.0.0.1:8786 --nthreads 2
//! cargo run --example scheduler_distributed -- --connect 127.0.0.1:8786
//! ```
//!
//! Worker processes run only ops their binary has registered: the dask.array
//! ops are, the plain functions of this example are not. With `--connect`
//! this example therefore runs only its dask.array part.

use dask::array::random;
use dask::distributed::{Client, LocalCluster};
use dask::prelude::*;

fn inc(x: i64) -> i64 {
    x + 1
}

fn add(a: i64, b: i64) -> i64 {
    a + b
}

fn checked_sqrt(x: f64) -> Result<f64, String> {
    if x >= 0.0 {
        Ok(x.sqrt())
    } else {
        Err(format!("sqrt of a negative number: {x}"))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let connect = args.iter().position(|a| a == "--connect").map(|i| {
        args.get(i + 1)
            .cloned()
            .ok_or("--connect needs the scheduler's address, e.g. --connect 127.0.0.1:8786")
    });

    // 1. A cluster. `Client::new()` is the one-liner (one worker with a thread
    //    per core, and a dashboard); the builder chooses the shape. Either
    //    way the client owns the cluster: it stops when the client does.
    let client = match connect {
        Some(addr) => Client::connect(&addr?)?,
        None => {
            let cluster = LocalCluster::builder()
                .n_workers(2)
                .threads_per_worker(2)
                .no_dashboard()
                .start()?;
            Client::with_cluster(cluster)?
        }
    };
    println!("{client}"); // the scheduler's address, workers, threads, memory
    let workers = client.workers()?;
    println!(
        "{} worker(s): {:?}",
        workers.len(),
        workers.iter().map(|w| &w.addr).collect::<Vec<_>>()
    );

    // 2. Any collection computes on the cluster: the graph goes to the
    //    scheduler, which hands tasks to workers. Same result as on the sync
    //    scheduler (the array's random numbers are seeded).
    let x = random::random(&[400, 400], 100, 7)?;
    let y = (&x + &x.t())?.mean(None)?;
    let on_cluster = y.compute_scalar_with(&client)?;
    let on_sync = y.compute_scalar_with(&SyncScheduler::new())?;
    println!("(x + x.T).mean() = {on_cluster:.6} on the cluster");
    assert_eq!(on_cluster, on_sync);

    if client.cluster().is_none() {
        // Connected to processes started by hand: they do not know `inc`,
        // `add` and the closures below. Stop here.
        println!("ok: scheduler_distributed");
        return Ok(());
    }

    // 3. Futures: submit starts a task now and returns at once; result()
    //    waits for it. A future can be the input of another task, which then
    //    runs where its input lives, with no round trip through the client.
    let a = client.submit(inc, (9i64,))?;
    let b = client.submit(inc, (19i64,))?;
    let c = client.submit(add, (&a, &b))?;
    assert_eq!(c.result()?, 10 + 20);
    println!(
        "submit: inc(9) + inc(19) = {}, status {:?}",
        c.result()?,
        c.status()
    );

    // map: one future per input; gather: all their results, in order.
    let futures = client.map(inc, 0..100i64)?;
    let got = client.gather(&futures)?;
    assert_eq!(got, (1..=100).collect::<Vec<i64>>());

    // 4. Delayed graphs compute on the cluster too; a failing task comes
    //    back as a typed error naming the task, with its cause.
    let parts: Vec<Delayed<i64>> = (0..10).map(|i| delayed(inc).call((i,))).collect();
    let total = delayed(|xs: Vec<i64>| xs.iter().sum::<i64>()).call((parts,));
    assert_eq!(
        total.compute_with(&client)?,
        total.compute_with(&SyncScheduler::new())?
    );
    let root = dask::try_delayed(checked_sqrt).call((-4.0f64,));
    match root.compute_with(&client) {
        Ok(v) => panic!("sqrt(-4) gave {v}"),
        Err(e) => {
            println!("a failing task: {e}");
            assert!(matches!(e, dask::Error::TaskFailed { .. }), "{e:?}");
            assert!(
                e.to_string().contains("sqrt of a negative number: -4"),
                "{e}"
            );
        }
    }

    client.shutdown(); // stops the cluster's workers and scheduler
    println!("ok: scheduler_distributed");
    Ok(())
}
