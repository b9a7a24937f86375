//! The seed's example: `x = random((10000, 10000))`, `(x + x.T).sum()`.
//!
//! Run with `cargo run --release -p dask-array --example seed [n] [chunk]`.

use std::time::Instant;

use dask_array::{random, Collection};
use dask_sync_scheduler::SyncScheduler;
use dask_threaded::ThreadedScheduler;

fn main() -> dask_array::Result<()> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let n = args.next().and_then(Result::ok).unwrap_or(10_000);
    let chunk = args.next().and_then(Result::ok).unwrap_or(1_000);
    let x = random::random(&[n, n], chunk, 42)?;
    let y = (&x + &x.t())?;
    let total = y.sum(None)?;
    println!("x.shape() = {:?}", x.shape());
    println!("{y}");
    println!("{total}");
    let threaded = ThreadedScheduler::new();
    let t = Instant::now();
    let s = total.compute_scalar_with(&threaded)?;
    println!(
        "threaded ({} threads): sum = {s:.3} (expected about {:.0}) in {:.2?}",
        threaded.num_threads(),
        (n * n) as f64,
        t.elapsed()
    );
    let t = Instant::now();
    let s2 = total.compute_scalar_with(&SyncScheduler::new())?;
    println!("sync: sum = {s2:.3} in {:.2?}", t.elapsed());
    let t = Instant::now();
    let a = x.compute_with(&threaded)?;
    let gen = t.elapsed();
    let t = Instant::now();
    let plain = (&a + &a.t()).sum();
    println!(
        "plain ndarray on one thread (after generating x in {gen:.2?}): sum = {plain:.3} in {:.2?}",
        t.elapsed()
    );
    Ok(())
}
