//! Chaos: an array reduction and a dataframe groupby, together more than
//! 10 000 tasks, on `dask worker` processes, each under its nanny, while a
//! random worker process is SIGKILLed every few hundred milliseconds. The
//! nannies start fresh workers, the scheduler recomputes what the dead ones
//! held, and every answer must equal the sync scheduler's (and, for the
//! groupby, polars' on the whole frame), bit for bit, in every repetition.
//!
//! `DASK_CHAOS_RUNS` sets the number of repetitions (default 20).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dask::array::{random, Reduce};
use dask::core::Collection;
use dask::dataframe::polars::prelude as pl;
use dask::dataframe::polars::prelude::IntoLazy;
use dask::dataframe::{Agg, DataFrame};
use dask::distributed::Client;
use dask_testing::Rng;

use super::processes::{spawn, Procs};

/// Starts `dask worker ADDR` (with its nanny) and drains its standard output
/// for as long as it lives: a worker the nanny restarts prints its address
/// again, and must find someone reading.
fn spawn_nanny(addr: &str) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dask"))
        .args(["worker", addr, "--nthreads", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the dask binary");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut first = true;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if first && line.starts_with("worker at ") {
                first = false;
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the worker never printed its address");
    child
}

/// The worker processes a nanny started: the children of `nanny` (read from
/// `/proc`, whose `stat` line holds the parent pid after the command name).
fn children_of(nanny: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    let rest = &stat[stat.rfind(')')? + 1..];
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(nanny)
        })
        .collect()
}

/// SIGKILLs a random worker process (never a nanny) every 150–450 ms until
/// `stop`, counting the kills.
fn killer(nannies: Vec<u32>, stop: Arc<AtomicBool>, kills: Arc<AtomicUsize>, seed: u64) {
    let mut rng = Rng::new(seed);
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(150 + rng.below(300) as u64));
        let nanny = nannies[rng.below(nannies.len())];
        for pid in children_of(nanny) {
            let killed = Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if killed {
                kills.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The groupby half: a seeded integer frame (`k`: 50 groups, `a`, `b`) in
/// `npartitions` partitions, aggregated by `k` as a tree (split_every 4):
/// integer sums, maxima and counts, and a mean whose partial sums are exact
/// in f64 (small integers), so the answer is bit-for-bit polars' own.
fn groupby_case(seed: u64, npartitions: usize) -> (DataFrame, pl::DataFrame) {
    let mut rng = Rng::new(seed);
    let rows = npartitions * 16;
    let k: Vec<i64> = (0..rows).map(|_| rng.below(50) as i64).collect();
    let a: Vec<i64> = (0..rows).map(|_| rng.below(2001) as i64 - 1000).collect();
    let b: Vec<i64> = (0..rows).map(|_| rng.below(100) as i64).collect();
    let whole = pl::df!("k" => k, "a" => a, "b" => b).unwrap();
    let by = DataFrame::from_polars(whole.clone(), npartitions)
        .unwrap()
        .with_split_every(4)
        .unwrap()
        .groupby(&["k"])
        .unwrap()
        .agg(&[
            ("a", Agg::Sum),
            ("a", Agg::Mean),
            ("b", Agg::Max),
            ("b", Agg::Count),
        ])
        .unwrap();
    let want = whole
        .lazy()
        .group_by([pl::col("k")])
        .agg([
            pl::col("a").sum().alias("a_sum"),
            pl::col("a").mean().alias("a_mean"),
            pl::col("b").max().alias("b_max"),
            pl::col("b").count().alias("b_count"),
        ])
        .sort(["k"], Default::default())
        .collect()
        .unwrap();
    (by, want)
}

/// Bit-for-bit equality of two frames (floats compared by their bits).
fn assert_same_frame(got: &pl::DataFrame, want: &pl::DataFrame, ctx: &str) {
    assert_eq!(got.schema(), want.schema(), "{ctx}: schema");
    for (g, w) in got.columns().iter().zip(want.columns()) {
        let (g, w) = (g.as_materialized_series(), w.as_materialized_series());
        if g.dtype().is_float() {
            let bits = |s: &pl::Series| -> Vec<Option<u64>> {
                s.f64()
                    .unwrap()
                    .iter()
                    .map(|v| v.map(f64::to_bits))
                    .collect()
            };
            assert_eq!(bits(g), bits(w), "{ctx}: column {}", g.name());
        } else {
            assert!(g.equals_missing(w), "{ctx}: column {}", g.name());
        }
    }
}

#[test]
fn answers_survive_workers_killed_every_few_hundred_ms() {
    let runs: u64 = std::env::var("DASK_CHAOS_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let (scheduler, addr) = spawn(&["scheduler", "--port", "0"], "scheduler at ");
    let mut procs = Procs(vec![scheduler]);
    for _ in 0..3 {
        procs.0.push(spawn_nanny(&addr));
    }
    let nannies: Vec<u32> = procs.0[1..].iter().map(Child::id).collect();
    let client = Arc::new(Client::connect(&addr).unwrap());
    let sync = dask::SyncScheduler::new();

    let (mut total_kills, started) = (0, Instant::now());
    for run in 0..runs {
        // 4096 random blocks, the transpose-add, and sum trees (over axis
        // 0, so each random block has two readers and none is fused into
        // one; then over the rest), plus a groupby over 600 partitions
        // (about 800 tasks after fusion: a chunk per partition, its data
        // folded in, and the combine tree): over 10 000 tasks, small enough
        // to run in a few seconds.
        let x = random::random(&[1024, 1024], 16, 1000 + run).unwrap();
        let y = (&x + &x.t()).unwrap();
        // Random blocks kept as tasks (as `dask::compute_with` sends them:
        // it applies dask-core's fusion only), so they count below.
        let total = y
            .sum(Reduce::axis(0).split_every(4))
            .and_then(|s| s.sum(None))
            .unwrap()
            .inline_creation(0);
        let (by, polars_by) = groupby_case(2000 + run, 600);
        let array_tasks = total.optimized_graph().unwrap().len();
        let frame_tasks = by.optimized_graph().unwrap().len();
        let tasks = array_tasks + frame_tasks;
        assert!(frame_tasks >= 600, "only {frame_tasks} groupby tasks");
        assert!(tasks >= 10_000, "only {tasks} tasks");
        let expected = total.compute_scalar_with(&sync).unwrap();
        let expected_by = by.compute_with(&sync).unwrap();
        assert_same_frame(&expected_by, &polars_by, "sync vs polars");

        let stop = Arc::new(AtomicBool::new(false));
        let kills = Arc::new(AtomicUsize::new(0));
        let chaos = {
            let (nannies, stop, kills) = (nannies.clone(), stop.clone(), kills.clone());
            std::thread::spawn(move || killer(nannies, stop, kills, run + 7))
        };
        let t0 = Instant::now();
        let got = {
            let (client, total, by) = (client.clone(), total.clone(), by.clone());
            // A bound against hangs, not a timing assertion.
            dask_testing::within(Duration::from_secs(300), move || {
                dask::compute_with((&total, &by), &*client)
            })
        };
        stop.store(true, Ordering::Relaxed);
        chaos.join().unwrap();
        let (got, got_by) = got.unwrap_or_else(|e| panic!("run {run}: {e}"));
        assert_eq!(got.ndim(), 0, "run {run}: a scalar");
        assert_eq!(
            got.first(),
            Some(&expected),
            "run {run}: wrong array answer"
        );
        assert_same_frame(&got_by, &polars_by, &format!("run {run}: groupby"));
        let kills = kills.load(Ordering::Relaxed);
        total_kills += kills;
        eprintln!(
            "chaos run {run}: {tasks} tasks ({frame_tasks} groupby), {kills} workers killed, {:.1} s",
            t0.elapsed().as_secs_f64()
        );
    }
    eprintln!(
        "chaos: {runs} of {runs} runs right, {total_kills} workers killed, {:.0} s",
        started.elapsed().as_secs_f64()
    );
    drop(client);
    drop(procs);
}
