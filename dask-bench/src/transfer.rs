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

/// A scheduler in this process, two worker processes and a client.
struct Cluster {
    client: Client,
    /// The workers' data addresses.
    addrs: [String; 2],
    workers: Workers,
    scheduler: dask_distributed::scheduler::server::SchedulerHandle,
    _runtime: tokio::runtime::Runtime,
}

impl Cluster {
    fn start() -> BenchResult<Cluster> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let scheduler =
            runtime.block_on(dask_distributed::scheduler::server::start("127.0.0.1:0"))?;
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
        Ok(Cluster {
            client,
            addrs,
            workers,
            scheduler,
            _runtime: runtime,
        })
    }

    /// Stops the client, then the workers, then the scheduler.
    fn stop(self) {
        drop(self.client);
        drop(self.workers);
        drop(self.scheduler);
    }
}

/// Median and p99 of `round_trips` timed submit + result round trips of a
/// tiny task (after ten to warm the connections up); checks every result.
fn latency(client: &Client, round_trips: usize) -> BenchResult<(Duration, Duration)> {
    let mut trips = Vec::with_capacity(round_trips);
    for i in 0..round_trips as u64 + 10 {
        let t = Instant::now();
        let got = client.submit(transfer_inc, (i,))?.result()?;
        if got != i + 1 {
            return Err(format!("submit(inc, {i}) gave {got}").into());
        }
        if i >= 10 {
            trips.push(t.elapsed());
        }
    }
    let mut sorted = trips.clone();
    sorted.sort_unstable();
    let p99 = sorted[(sorted.len() - 1) * 99 / 100];
    Ok((crate::distributed::median(trips), p99))
}

/// The flag that makes this binary measure the latency only and print
/// `MEDIAN_US P99_US` (run under `taskset` by [`run`]).
pub(crate) const LATENCY_FLAG: &str = "--latency-probe";

/// The latency alone, printed as `MEDIAN_US P99_US`.
pub(crate) fn run_latency_probe(round_trips: usize) -> BenchResult<()> {
    let cluster = Cluster::start()?;
    let (median, p99) = latency(&cluster.client, round_trips)?;
    println!("{} {}", median.as_micros(), p99.as_micros());
    cluster.stop();
    Ok(())
}

/// The same latency with this process and its workers on one CPU (`taskset
/// -c 0`), as `(median, p99)` in µs, or why it could not be measured.
///
/// On this project's VMs an idle vCPU halts (no guest halt polling), and a
/// wake-up sent to a halted vCPU costs tens of µs; a round trip crosses
/// several threads in three processes, so on two CPUs those wake-ups are
/// most of it. On one CPU none is sent: what remains is the software path.
fn latency_on_one_cpu(round_trips: usize) -> Result<(u64, u64), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new("taskset")
        .args(["-c", "0"])
        .arg(exe)
        .args([LATENCY_FLAG, &round_trips.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("taskset: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let numbers: Vec<u64> = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    match (out.status.success(), numbers.as_slice()) {
        (true, [median, p99]) => Ok((*median, *p99)),
        _ => Err(format!(
            "the probe exited with {} and printed {text:?}",
            out.status
        )),
    }
}

pub(crate) fn run(sizes: &Sizes) -> BenchResult<()> {
    let cluster = Cluster::start()?;
    let (client, addrs) = (&cluster.client, &cluster.addrs);
    let n = sizes.mb * 1_000_000 / 8;
    let bytes = (n * 8) as f64;
    let want = transfer_array(n).sum();
    println!(
        "\ntransfer: scheduler here, 2 worker processes x 1 thread, TCP on 127.0.0.1; \
         ArrayD<f64> of {} MB",
        sizes.mb
    );
    let (median, p99) = latency(client, sizes.round_trips)?;
    println!(
        "  latency, submit + result of inc: median {:.0} µs, p99 {:.0} µs over {} round trips",
        median.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6,
        sizes.round_trips
    );
    match latency_on_one_cpu(sizes.round_trips) {
        Ok((median, p99)) => println!(
            "  same, every process on one CPU (taskset -c 0; no wake-up crosses CPUs): \
             median {median} µs, p99 {p99} µs"
        ),
        Err(why) => println!("  same on one CPU: not measured ({why})"),
    }
    let on = |i: usize| SubmitOptions::new().workers([addrs[i].clone()]).pure(false);
    let (mut between, mut to_client) = (Vec::new(), Vec::new());
    // One cold rep first: a new peer connection, and a receiver whose pages
    // are touched for the first time (on this VM that zeroing took most of a
    // 1.6 s first rep). It is printed apart from the median.
    for _ in 0..=sizes.reps {
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
    let (cold_between, cold_to_client) = (between.remove(0), to_client.remove(0));
    println!(
        "  worker -> worker (a task reads it): {:.0} MB/s (median of {}; cold first rep {:.0} MB/s)",
        rate(between),
        sizes.reps,
        rate(vec![cold_between])
    );
    println!(
        "  worker -> client (gather): {:.0} MB/s (median of {}; cold first rep {:.0} MB/s)",
        rate(to_client),
        sizes.reps,
        rate(vec![cold_to_client])
    );
    cluster.stop();
    Ok(())
}
