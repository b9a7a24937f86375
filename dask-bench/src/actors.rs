//! Actor benchmark: method calls on an actor living on a worker of an
//! in-process [`LocalCluster`], from a client connected over TCP (calls go
//! straight to the worker's data port over loopback, arguments and results
//! encoded).
//!
//! - **latency**: one `call(add, 1).result()` at a time: median and p99;
//! - **throughput**: calls issued back to back from one client (each
//!   returns a future at once), then their results: calls per second.
//!
//! Every call's result is checked against the running sum it must return.

use std::time::{Duration, Instant};

use dask_distributed::{Client, LocalCluster};

use crate::BenchResult;

/// The targets (issue 7): median call latency on loopback, and
/// calls per second from one client.
const LATENCY_TARGET_US: f64 = 200.0;
const THROUGHPUT_TARGET: f64 = 20_000.0;

#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
struct BenchCounter {
    n: u64,
}

impl BenchCounter {
    fn add(&mut self, x: u64) -> u64 {
        self.n += x;
        self.n
    }
}
dask_distributed::register_actor!(BenchCounter { add });

/// Sizes of one run.
pub(crate) struct Sizes {
    /// Sequential calls timed one by one.
    pub(crate) sequential: usize,
    /// Calls in flight at once for the throughput figure.
    pub(crate) pipelined: usize,
    pub(crate) reps: usize,
}

fn percentile(xs: &[Duration], p: f64) -> Duration {
    let mut xs = xs.to_vec();
    xs.sort_unstable();
    xs[((xs.len() - 1) as f64 * p).round() as usize]
}

/// Runs the actor benchmark and prints its figures.
pub(crate) fn run(sizes: &Sizes) -> BenchResult<()> {
    let cluster = LocalCluster::builder()
        .n_workers(1)
        .threads_per_worker(1)
        .no_dashboard()
        .start()?;
    let client = Client::connect(&cluster.scheduler_addr())?;
    let counter = client.submit_actor(BenchCounter::default())?;
    println!(
        "\nactors: LocalCluster 1 worker, TCP client, actor {} on {}{}",
        counter.key(),
        counter.worker(),
        if cfg!(debug_assertions) {
            " (debug build)"
        } else {
            " (release build)"
        }
    );
    let mut expected = 0u64;
    // Warm-up: the connection to the worker opens on the first call.
    for _ in 0..100 {
        expected += 1;
        let got = counter.call(BenchCounter::add, (1u64,))?.result()?;
        if got != expected {
            return Err(format!("actor add gave {got}, expected {expected}").into());
        }
    }
    let mut latencies = Vec::with_capacity(sizes.sequential);
    for _ in 0..sizes.sequential {
        expected += 1;
        let t = Instant::now();
        let got = counter.call(BenchCounter::add, (1u64,))?.result()?;
        latencies.push(t.elapsed());
        if got != expected {
            return Err(format!("actor add gave {got}, expected {expected}").into());
        }
    }
    let median = percentile(&latencies, 0.5).as_secs_f64() * 1e6;
    let p99 = percentile(&latencies, 0.99).as_secs_f64() * 1e6;
    println!(
        "  call latency, call + result one at a time: median {median:.0} µs, p99 {p99:.0} µs \
         over {} calls ({:.0} calls/s sequential)",
        latencies.len(),
        1e6 / median
    );
    let mut rates = Vec::with_capacity(sizes.reps);
    for _ in 0..sizes.reps {
        let t = Instant::now();
        let calls = (0..sizes.pipelined)
            .map(|_| counter.call(BenchCounter::add, (1u64,)))
            .collect::<Result<Vec<_>, _>>()?;
        for call in calls {
            expected += 1;
            let got = call.result()?;
            if got != expected {
                return Err(format!("pipelined actor add gave {got}, expected {expected}").into());
            }
        }
        rates.push(sizes.pipelined as f64 / t.elapsed().as_secs_f64());
    }
    rates.sort_unstable_by(f64::total_cmp);
    let rate = rates[rates.len() / 2];
    println!(
        "  throughput, {} calls in flight from one client: {rate:.0} calls/s (median of {})",
        sizes.pipelined,
        rates.len()
    );
    println!(
        "  targets (issue 7): median < {LATENCY_TARGET_US} µs: {}; >= {THROUGHPUT_TARGET} calls/s: {}",
        if median < LATENCY_TARGET_US {
            "met"
        } else {
            "MISSED"
        },
        if rate >= THROUGHPUT_TARGET {
            "met"
        } else {
            "MISSED"
        }
    );
    drop(counter);
    drop(client);
    cluster.shutdown();
    Ok(())
}
