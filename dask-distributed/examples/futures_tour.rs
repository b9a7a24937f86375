//! A tour of the futures API on a LocalCluster (2 workers x 1 thread, real
//! TCP), with rough figures: submit -> result round trips, and `map` +
//! `gather` throughput with pure (content-named) and impure keys.
//!
//! `cargo run -p dask-distributed --example futures_tour`

use std::time::{Duration, Instant};

use dask_distributed::{Client, LocalCluster, ReturnWhen, SubmitOptions};

fn inc(x: i64) -> i64 {
    x + 1
}
dask_core::register_op!(inc);

fn add(a: i64, b: i64) -> i64 {
    a + b
}
dask_core::register_op!(add);

fn main() -> Result<(), dask_distributed::Error> {
    let cluster = LocalCluster::builder()
        .n_workers(2)
        .threads_per_worker(1)
        .start()?;
    // A client over TCP only (no in-process shortcut), as a remote one would be.
    let client = Client::connect(&cluster.scheduler_addr())?;
    while client.workers()?.len() < 2 {
        std::thread::sleep(Duration::from_millis(5));
    }
    println!("{cluster}");

    let rounds = 2000;
    let mut latencies: Vec<Duration> = (0..rounds)
        .map(|i| {
            let start = Instant::now();
            let f = client.submit(inc, (i as i64,))?;
            let v = f.result()?;
            assert_eq!(v, i as i64 + 1);
            Ok(start.elapsed())
        })
        .collect::<Result<_, dask_distributed::Error>>()?;
    latencies.sort();
    println!(
        "submit -> result round trip: median {:?}, p99 {:?} ({rounds} rounds)",
        latencies[rounds / 2],
        latencies[rounds * 99 / 100]
    );

    let n = 20_000i64;
    for (label, opts) in [
        ("pure", SubmitOptions::new()),
        ("impure", SubmitOptions::new().pure(false)),
    ] {
        let start = Instant::now();
        let futures = client.map_with(inc, 0..n, &opts)?;
        let done = client.wait(&futures, None, ReturnWhen::AllCompleted)?;
        let elapsed = start.elapsed();
        assert_eq!(done.done.len(), n as usize);
        let values = client.gather(&futures)?;
        assert!(values.iter().zip(0..n).all(|(v, x)| *v == x + 1));
        println!(
            "map of {n} tiny tasks ({label} keys), submit to all done: {:.0} tasks/s",
            n as f64 / elapsed.as_secs_f64()
        );
    }

    let scattered = client.scatter((0..100i64).collect())?;
    let total = client.submit(add, (&scattered[3], &scattered[97]))?;
    println!(
        "scatter + submit: {} (expected {})",
        total.result()?,
        3 + 97
    );
    Ok(())
}
