//! Distributed benchmarks: a [`LocalCluster`] (scheduler and workers in this
//! process, talking over real TCP on 127.0.0.1) measured three ways:
//!
//! - **latency**: one `submit(inc, x)` then `result()` at a time, from a client
//!   connected over TCP (`Client::connect`, registered op, encoded task): the
//!   round trip client -> scheduler -> worker -> scheduler -> client, then the
//!   result read from the worker's memory (it lives in this process: no TCP
//!   gather; `transfer.rs` measures gathers from worker processes);
//! - **throughput**: `map(inc, 0..n)` then `gather`, tasks per second, and a
//!   tree-reduction graph through `compute_with(&client)` from the client that
//!   owns the cluster, in µs per task next to the threaded scheduler on the same
//!   graph.
//!
//! Every result is checked against a plain loop.

use std::time::{Duration, Instant};

use dask_core::{Collection, Delayed, Scheduler};
use dask_distributed::{Client, LocalCluster};
use dask_threaded::ThreadedScheduler;

use crate::BenchResult;

fn bench_inc(x: u64) -> u64 {
    x.wrapping_add(1)
}

fn bench_add(a: u64, b: u64) -> u64 {
    a.wrapping_add(b)
}

dask_core::register_op!(bench_inc);

/// Sizes of one run.
pub(crate) struct Sizes {
    pub(crate) round_trips: usize,
    pub(crate) map_tasks: u64,
    pub(crate) tree_leaves: u64,
    pub(crate) reps: usize,
}

pub(crate) fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort_unstable();
    xs[xs.len() / 2]
}

fn percentile(xs: &[Duration], p: f64) -> Duration {
    let mut xs = xs.to_vec();
    xs.sort_unstable();
    xs[((xs.len() - 1) as f64 * p).round() as usize]
}

/// A binary tree of `bench_add` over `inc(i)` leaves, as delayed values.
fn tree(leaves: u64) -> Delayed<u64> {
    let inc = dask_core::delayed(bench_inc);
    let add = dask_core::delayed(bench_add);
    let mut level: Vec<Delayed<u64>> = (0..leaves).map(|i| inc.call((i,))).collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [a, b] => add.call((a, b)),
                [a] => a.clone(),
                _ => unreachable!("chunks(2) yields one or two items"),
            })
            .collect();
    }
    level.pop().expect("at least one leaf")
}

/// Runs the distributed benchmarks and prints their figures.
pub(crate) fn run(sizes: &Sizes) -> BenchResult<()> {
    let cluster = LocalCluster::builder()
        .n_workers(2)
        .threads_per_worker(1)
        .start()?;
    let addr = cluster.scheduler_addr();
    println!("\ndistributed: LocalCluster, 2 workers x 1 thread, scheduler at {addr} (TCP)");

    // Latency, from a TCP client.
    let tcp = Client::connect(&addr)?;
    let mut trips = Vec::with_capacity(sizes.round_trips);
    for i in 0..sizes.round_trips as u64 + 10 {
        let t = Instant::now();
        let got = tcp.submit(bench_inc, (i,))?.result()?;
        let dt = t.elapsed();
        if got != i + 1 {
            return Err(format!("submit(inc, {i}) gave {got}").into());
        }
        if i >= 10 {
            trips.push(dt); // the first ten warm connections up
        }
    }
    println!(
        "  latency, submit + result (TCP client): median {:.0} µs, p90 {:.0} µs, p99 {:.0} µs over {} round trips",
        median(trips.clone()).as_secs_f64() * 1e6,
        percentile(&trips, 0.9).as_secs_f64() * 1e6,
        percentile(&trips, 0.99).as_secs_f64() * 1e6,
        trips.len()
    );

    // Throughput: map + gather.
    let n = sizes.map_tasks;
    let want: u64 = (0..n).map(bench_inc).sum();
    let mut times = Vec::new();
    for _ in 0..sizes.reps {
        let t = Instant::now();
        let futures = tcp.map(bench_inc, 0..n)?;
        let got: u64 = tcp.gather(&futures)?.iter().sum();
        times.push(t.elapsed());
        if got != want {
            return Err(format!("map(inc) summed to {got}, expected {want}").into());
        }
    }
    let t = median(times);
    println!(
        "  map(inc, {n}) + gather (TCP client): {:.3} s, {:.0} tasks/s, {:.1} µs/task",
        t.as_secs_f64(),
        n as f64 / t.as_secs_f64(),
        t.as_secs_f64() * 1e6 / n as f64
    );

    // A graph through the Scheduler trait, from the client owning the cluster.
    let owner = Client::with_cluster(
        LocalCluster::builder()
            .n_workers(2)
            .threads_per_worker(1)
            .start()?,
    )?;
    let threaded = ThreadedScheduler::with_threads(2)?;
    let graph = tree(sizes.tree_leaves);
    let want: u64 = (0..sizes.tree_leaves).map(bench_inc).sum();
    let tasks = 2 * sizes.tree_leaves - 1;
    for (name, s) in [
        ("threaded, 2 threads", &threaded as &dyn Scheduler),
        ("LocalCluster 2x1 (compute_with)", &owner),
    ] {
        let mut times = Vec::new();
        for _ in 0..sizes.reps {
            let t = Instant::now();
            let got = graph.compute_with(s)?;
            times.push(t.elapsed());
            if got != want {
                return Err(format!("{name}: tree gave {got}, expected {want}").into());
            }
        }
        let t = median(times);
        println!(
            "  tree reduction, {tasks} tasks, {name:<32} {:.3} s, {:.2} µs/task",
            t.as_secs_f64(),
            t.as_secs_f64() * 1e6 / tasks as f64
        );
    }

    drop(tcp);
    drop(owner);
    cluster.shutdown();
    Ok(())
}
