//! The demo the README opens with: one lazy computation, run on every scheduler.
//!
//! Estimates pi by Monte Carlo: 64 delayed tasks each draw 400k seeded points,
//! a tree of delayed additions sums the hits. The same graph runs on the sync
//! scheduler and on the threaded one with 1 and all threads; the answer is the
//! same (seeded), the times differ. Then a task fails on purpose, to show the
//! error a user sees.
//!
//! Run: `cargo run --example demo`

use std::time::Instant;

use dask::prelude::*;

const CHUNKS: u64 = 64;
const SAMPLES: u64 = 400_000;

/// Points of chunk `seed` that fall inside the unit circle (xorshift, seeded).
fn hits(seed: u64, samples: u64) -> u64 {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..samples)
        .filter(|_| {
            let (x, y) = (next(), next());
            x * x + y * y <= 1.0
        })
        .count() as u64
}

fn add(a: u64, b: u64) -> u64 {
    a + b
}

/// Sums delayed values pairwise: a tree of depth log2(n).
fn tree_sum(mut level: Vec<Delayed<u64>>) -> Delayed<u64> {
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [a, b] => delayed(add).call((a, b)),
                [a] => a.clone(),
                _ => unreachable!("chunks(2) gives 1 or 2"),
            })
            .collect();
    }
    level.pop().expect("at least one chunk")
}

fn main() -> dask::Result<()> {
    let chunks: Vec<Delayed<u64>> = (0..CHUNKS)
        .map(|seed| delayed(hits).call((seed, SAMPLES)))
        .collect();
    let inside = tree_sum(chunks);
    let pi = inside.map(|h| 4.0 * h as f64 / (CHUNKS * SAMPLES) as f64);
    let tasks = pi.graph().len();
    println!(
        "pi by Monte Carlo: {CHUNKS} chunks x {SAMPLES} samples, {tasks} tasks in the graph\n"
    );

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let schedulers: Vec<(String, Box<dyn Scheduler>)> = vec![
        ("sync".into(), Box::new(SyncScheduler::new())),
        (
            "threaded, 1 thread".into(),
            Box::new(ThreadedScheduler::with_threads(1)?),
        ),
        (
            format!("threaded, {cores} threads"),
            Box::new(ThreadedScheduler::with_threads(cores)?),
        ),
    ];
    let mut baseline = None;
    for (name, scheduler) in &schedulers {
        let start = Instant::now();
        let value = pi.compute_with(scheduler.as_ref())?;
        let secs = start.elapsed().as_secs_f64();
        let base = *baseline.get_or_insert(secs);
        println!(
            "{name:<22} pi = {value:.6}   {:>8.1} ms   speed-up x{:.2}",
            secs * 1e3,
            base / secs
        );
    }

    // The same estimate, checked with a plain loop: every scheduler must agree.
    let expected =
        4.0 * (0..CHUNKS).map(|s| hits(s, SAMPLES)).sum::<u64>() as f64 / (CHUNKS * SAMPLES) as f64;
    assert_eq!(
        pi.compute()?,
        expected,
        "schedulers disagree with the plain loop"
    );
    println!("\nplain loop agrees: pi = {expected:.6}");

    // A failing task: the error names the key, the op and the cause.
    let bad = dask::try_delayed(|x: u64| {
        if x > 0 {
            Ok(x)
        } else {
            Err("x must be positive")
        }
    })
    .call((0u64,));
    let total = delayed(add).call((&bad, &inside));
    match total.compute() {
        Ok(v) => println!("unexpected success: {v}"),
        Err(e) => println!("\na failing task gives a typed error:\n  {e}"),
    }
    Ok(())
}
