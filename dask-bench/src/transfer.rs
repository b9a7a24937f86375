//! Transfer over real TCP between processes: a scheduler in this process and
//! two worker processes (this binary again, `--worker ADDRESS`), so no value
//! takes the in-process shortcut that a `LocalCluster` of threads uses.
//!
//! Figures: an `ArrayD<f64>` of `mb` MB (dask-array's raw codec) moved from
//! one worker to the other (a task on the second reads it), and from a worker
//! to this process (the client gathers it). The worker-to-worker figure is the
//! remote task's time minus the same task's time on the worker holding the
//! array; the client figure is the whole gather. First, the submit + result
//! latency of a tiny task against these worker processes (unlike the
//! distributed section's, its result comes back over TCP).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dask_array::ndarray::{ArrayD, IxDyn};
use dask_distributed::{Client, ReturnWhen, SubmitOptions};

use crate::BenchResult;

/// The array of `n` elements `i % 1000` as f64.
fn transfer_array(n: u64) -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(&[n as usize]), |i| (i[0] % 1000) as f64)
}

/// Reads the array in place (`Shared`): a plain `ArrayD` parameter would
/// copy 800 MB on each worker first.
fn transfer_sum(a: dask_core::Shared<ArrayD<f64>>) -> f64 {
    a.sum()
}

fn transfer_inc(x: u64) -> u64 {
    x.wrapping_add(1)
}
dask_core::register_op!(transfer_inc);

dask_core::register_op!(transfer_array);
dask_core::register_op!(transfer_sum);

/// The flag that makes this binary a worker process.
pub(crate) const WORKER_FLAG: &str = "--worker";

/// Runs this process as a one-thread worker of the scheduler at `addr`.
pub(crate) fn run_worker(addr: &str) -> BenchResult<()> {
    Ok(dask_distributed::process::run_worker(addr, 1)?)
}

/// Worker processes, killed when dropped.
struct Workers(Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Sizes of one run.
pub(crate) struct Sizes {
    /// Megabytes (10^6 bytes) of the array.
    pub(crate) mb: u64,
    /// Timed submit + result round trips.
    pub(crate) round_trips: usize,
    pub(crate) reps: usize,
}

pub(crate) fn run(sizes: &Sizes) -> BenchResult<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let scheduler = runtime.block_on(dask_distributed::scheduler::server::start("127.0.0.1:0"))?;
    let addr = scheduler.addr().to_string();
    let exe = std::env::current_exe()?;
    let mut workers = Workers(Vec::new());
    for _ in 0..2 {
        workers.0.push(
            Command::new(&exe)
                .args([WORKER_FLAG, &addr])
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()?,
        );
    }
    let client = Client::connect(&addr)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let addrs = loop {
        let known = client.workers()?;
        if known.len() == 2 {
            break [known[0].addr.clone(), known[1].addr.clone()];
        }
        if Instant::now() > deadline {
            return Err("the two worker processes did not join within 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let n = sizes.mb * 1_000_000 / 8;
    let bytes = (n * 8) as f64;
    let want = transfer_array(n).sum();
    println!(
        "\ntransfer: scheduler here, 2 worker processes x 1 thread, TCP on 127.0.0.1; \
         ArrayD<f64> of {} MB",
        sizes.mb
    );
    let mut trips = Vec::with_capacity(sizes.round_trips);
    for i in 0..sizes.round_trips as u64 + 10 {
        let t = Instant::now();
        let got = client.submit(transfer_inc, (i,))?.result()?;
        if got != i + 1 {
            return Err(format!("submit(inc, {i}) gave {got}").into());
        }
        if i >= 10 {
            trips.push(t.elapsed()); // the first ten warm the connections up
        }
    }
    let p99 = {
        let mut sorted = trips.clone();
        sorted.sort_unstable();
        sorted[(sorted.len() - 1) * 99 / 100]
    };
    println!(
        "  latency, submit + result of inc: median {:.0} µs, p99 {:.0} µs over {} round trips",
        crate::distributed::median(trips.clone()).as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6,
        trips.len()
    );
    let on = |i: usize| SubmitOptions::new().workers([addrs[i].clone()]).pure(false);
    let (mut between, mut to_client) = (Vec::new(), Vec::new());
    for _ in 0..sizes.reps {
        let array = client.submit_with(transfer_array, (n,), &on(0))?;
        client.wait(std::slice::from_ref(&array), None, ReturnWhen::AllCompleted)?;
        let t = Instant::now();
        let local = client
            .submit_with(transfer_sum, (&array,), &on(0))?
            .result()?;
        let local_time = t.elapsed();
        let t = Instant::now();
        let remote = client
            .submit_with(transfer_sum, (&array,), &on(1))?
            .result()?;
        let remote_time = t.elapsed();
        if local != want || remote != want {
            return Err(format!("sums {local} and {remote}, expected {want}").into());
        }
        if std::env::var_os("DASK_BENCH_TRANSFER_DEBUG").is_some() {
            eprintln!("local {local_time:?} remote {remote_time:?}");
        }
        between.push(remote_time.saturating_sub(local_time));
        let t = Instant::now();
        let got = array.result()?;
        to_client.push(t.elapsed());
        if got.len() as u64 != n || got.sum() != want {
            return Err("the gathered array differs from the one made".into());
        }
    }
    let rate = |times: Vec<Duration>| bytes / crate::distributed::median(times).as_secs_f64() / 1e6;
    println!(
        "  worker -> worker (a task reads it): {:.0} MB/s (median of {})",
        rate(between),
        sizes.reps
    );
    println!(
        "  worker -> client (gather): {:.0} MB/s (median of {})",
        rate(to_client),
        sizes.reps
    );
    drop(client);
    drop(workers);
    drop(scheduler);
    Ok(())
}
