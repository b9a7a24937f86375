//! Coordination benchmark (issue 7): round trips of the primitives held by
//! the scheduler, from clients connected over TCP to an in-process
//! [`LocalCluster`].
//!
//! - **lock**: `acquire` and `release` of an uncontended lock (one round
//!   trip each), one pair at a time: median and p99 of each;
//! - **queue**: `put` + `get` of a `u64`, one pair at a time: median and p99;
//! - **pub/sub**: one client publishes `u64`s back to back, a second client's
//!   subscriber receives them: messages per second, every message checked
//!   (all delivered, in order).

use std::time::{Duration, Instant};

use dask_distributed::{Client, LocalCluster, Lock, Pub, Queue, Sub};

use crate::BenchResult;

/// The target for lock round trips on loopback (median).
const LOCK_TARGET_US: f64 = 200.0;
const WAIT: Duration = Duration::from_secs(10);

/// Sizes of one run.
pub(crate) struct Sizes {
    /// Round trips timed one by one, per primitive.
    pub(crate) round_trips: usize,
    /// Messages published for the pub/sub rate.
    pub(crate) messages: usize,
}

fn micros(mut xs: Vec<Duration>) -> (f64, f64) {
    xs.sort_unstable();
    let at = |p: f64| xs[((xs.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e6;
    (at(0.5), at(0.99))
}

/// Times `round_trips` calls of `f` (after a warm-up of 50): median and
/// p99 in µs.
fn time_each(
    round_trips: usize,
    mut f: impl FnMut(u64) -> BenchResult<()>,
) -> BenchResult<(f64, f64)> {
    for i in 0..50 {
        f(i)?;
    }
    let mut times = Vec::with_capacity(round_trips);
    for i in 0..round_trips as u64 {
        let t = Instant::now();
        f(i)?;
        times.push(t.elapsed());
    }
    Ok(micros(times))
}

pub(crate) fn run(sizes: &Sizes) -> BenchResult<()> {
    let cluster = LocalCluster::builder()
        .n_workers(1)
        .threads_per_worker(1)
        .no_dashboard()
        .start()?;
    let client = Client::connect(&cluster.scheduler_addr())?;
    println!(
        "\ncoordination: LocalCluster, TCP clients, primitives held by the scheduler{}",
        if cfg!(debug_assertions) {
            " (debug build)"
        } else {
            " (release build)"
        }
    );

    let lock = Lock::new(&client, "bench-lock")?;
    let (mut acquires, mut releases) = (Vec::new(), Vec::new());
    for i in 0..sizes.round_trips + 50 {
        let t = Instant::now();
        lock.acquire(WAIT)?;
        let acquired = t.elapsed();
        lock.release()?;
        if i >= 50 {
            // The first 50 warm up the connection and the scheduler's maps.
            acquires.push(acquired);
            releases.push(t.elapsed() - acquired);
        }
    }
    let (median, p99) = micros(acquires);
    let (release_median, release_p99) = micros(releases);
    println!(
        "  lock acquire (one round trip): median {median:.0} µs, p99 {p99:.0} µs; release: \
         median {release_median:.0} µs, p99 {release_p99:.0} µs; over {} acquire + release \
         pairs (target: median < {LOCK_TARGET_US} µs: {})",
        sizes.round_trips,
        if median < LOCK_TARGET_US {
            "met"
        } else {
            "MISSED"
        }
    );

    let queue = Queue::new(&client, "bench-queue", None)?;
    let (median, p99) = time_each(sizes.round_trips, |i| {
        queue.put(i, WAIT)?;
        let got: u64 = queue.get(WAIT)?;
        if got != i {
            return Err(format!("queue gave {got}, expected {i}").into());
        }
        Ok(())
    })?;
    println!(
        "  queue put + get: median {median:.0} µs, p99 {p99:.0} µs over {} round trips",
        sizes.round_trips
    );

    // A subscriber on a second client, so messages cross the scheduler.
    let other = Client::connect(&cluster.scheduler_addr())?;
    let sub = Sub::new(&other, "bench-topic")?;
    let publisher = Pub::new(&client, "bench-topic")?;
    let n = sizes.messages as u64;
    let t = Instant::now();
    let receiver = std::thread::spawn(move || -> Result<(), String> {
        for i in 0..n {
            let got: u64 = sub.get(WAIT).map_err(|e| e.to_string())?;
            if got != i {
                return Err(format!(
                    "subscriber got {got}, expected {i} (lost or reordered)"
                ));
            }
        }
        Ok(())
    });
    for i in 0..n {
        if publisher.put(i)? != 1 {
            return Err("the subscriber was not registered when publishing".into());
        }
    }
    receiver
        .join()
        .map_err(|_| "the subscriber thread panicked")??;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "  pub/sub: {n} messages published by one client, all received in order by another: \
         {:.0} messages/s",
        n as f64 / secs
    );
    // Every handle holds its client: drop them all before the cluster goes.
    drop((lock, queue, publisher, other, client));
    cluster.shutdown();
    Ok(())
}
