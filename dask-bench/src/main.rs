//! Scheduler benchmarks for dask-rs, run by `cargo xtask bench [--quick]`
//! (always a release build).
//!
//! **What it measures.** The scheduling overhead per task: how much time each
//! scheduler needs per no-op task on top of the task's own work. Every task
//! calls a trivial op (`inc(x) = x + 1` or `add(a, b) = a + b` on `u64`s,
//! wrapped by [`dask_core::op::fn_op`]), so nearly all the measured time is
//! scheduling. Three graph shapes of 100k tasks each:
//!
//! - **flat**: 100k independent `inc(i)` tasks, every one of them an output
//!   (so the scheduler also hands back 100k values);
//! - **chain**: `inc(inc(inc(... inc(0))))`, each task reading the previous one;
//! - **tree**: a binary tree reduction: 50k `inc(i)` leaves, combined pairwise
//!   by `add` up to one root (2 x 50k - 1 tasks).
//!
//! Each shape runs on the sync scheduler and on the threaded scheduler with 1
//! thread and with all cores, next to baselines doing the same work in the same
//! process:
//!
//! - a **raw loop** over `u64`s (no `Value`, no op: what the work costs in Rust);
//! - an **`Op::call` loop**: the same op objects called through [`Op::call`] on
//!   the same [`Value`]s, in the same order, without a graph; the scheduler
//!   overhead column is `(scheduler - Op::call loop) / tasks`;
//! - **rayon**: `par_iter` over the same work (flat) or a `rayon::join`
//!   recursive reduction (tree), on `u64`s and through `Op::call`. A chain has
//!   no parallelism, so rayon has nothing to do there.
//!
//! A scheduler's time is the whole `Scheduler::compute` call: planning
//! (validation, culling, ordering), running and collecting the outputs.
//!
//! Then the time to build a 1M-task tree-reduction graph, [`cull`] it, and
//! order it ([`Plan::new`], the ordering every scheduler runs; [`order`], the
//! public priorities map built on it, reported as well), each phase and the
//! total (the median of the rounds' totals). The 1M-task graph is then
//! computed once by the sync scheduler as a check.
//!
//! **Honest figures.** Every run of every runner is checked against the
//! expected result (computed by a plain loop and checked against a closed
//! formula), so a broken scheduler cannot post a fast wrong figure; a mismatch
//! ends the benchmark with an error and exit status 1. Each figure is the median
//! of several timed repetitions after one untimed warm-up. Missing a target is
//! reported, not an error: timed asserts belong to no test.
//!
//! Last, the distributed figures (see `distributed.rs`): submit/result
//! latency and map throughput from a TCP client, a tree reduction through
//! `compute_with(&client)` next to the threaded scheduler, on an in-process
//! `LocalCluster`. Then the transfer figures (see `transfer.rs`): an 800 MB
//! array moved over TCP between two worker processes and to the client.
//!
//! Then the actor figures (see `actors.rs`): method-call latency (median and
//! p99) and calls per second from one TCP client; and the coordination
//! figures in the same section (see `coordination.rs`): lock and queue round
//! trips (median and p99) and the pub/sub message rate between two clients.
//!
//! Then the array section (see `array.rs`, issue 4): `(x + x.T).sum()` on
//! a seeded 20000 x 20000 array in 2000 x 2000 chunks, `x.dot(x.T).sum()` on
//! 4000 x 4000 in 1000 x 1000 chunks and `x.mean(axis=0)`, on the sync and
//! threaded schedulers next to ndarray (one thread, and rayon over row bands)
//! on the same values, with times, ratios and peak resident memory.
//!
//! Flags: `--quick` (10k tasks per shape, a 100k-task graph, a 2000 x 2000
//! array: a smoke test), `--reps N` (timed repetitions per figure),
//! `--only schedulers|distributed|transfer|actors|array` (one section; runs in a dev
//! build too, with a warning), `--array-n N` (the
//! array's edge, chunks of N/10; the dot case keeps its size), `--help`.

mod actors;
mod array;
mod coordination;
mod distributed;
mod transfer;

use std::error::Error;
use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dask_core::op::fn_op;
use dask_core::{cull, order, Arg, Graph, Key, Op, Plan, Scheduler, Task, Value};
use dask_sync_scheduler::SyncScheduler;
use dask_threaded::ThreadedScheduler;
use rayon::prelude::*;

/// Large blocks on huge pages, as NumPy does (see `dask_core::alloc`).
#[global_allocator]
static ALLOC: dask_core::alloc::HugePageAlloc = dask_core::alloc::HugePageAlloc;

type BenchResult<T> = Result<T, Box<dyn Error>>;

/// The targets, in µs per task (whole compute, op included).
const SYNC_TARGET_US: f64 = 1.0;
const THREADED_TARGET_US: f64 = 2.0;
/// Build + cull + order of the 1M-task graph, in seconds.
const BIG_GRAPH_TARGET_S: f64 = 2.0;

const USAGE: &str = "usage: dask-bench [--quick] [--reps N] [--only SECTION] [--array-n N]

  --quick        smoke test: 10k tasks per shape, a 100k-task graph, a 2000 x 2000 array
  --reps N       timed repetitions per figure (median reported; default 7, quick 3;
                 the array section: default 3, quick 1)
  --only SECTION one section: schedulers, distributed, transfer, actors or array
  --array-n N    the array section's square array edge (default 20000, quick 2000),
                 in N/10 chunks; x.dot(x.T) keeps its size
  --help         this text

Run it as `cargo xtask bench [--quick]` (a release build).";

// ---------------------------------------------------------------------------
// Arguments

/// The sections of the benchmark, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Section {
    Schedulers,
    Distributed,
    Transfer,
    Actors,
    Array,
}

#[derive(Debug)]
struct Config {
    /// Tasks per shape.
    tasks: u64,
    /// Tasks of the large graph.
    big: u64,
    reps: usize,
    /// Run only this section.
    only: Option<Section>,
    array: array::Sizes,
}

impl Config {
    fn wants(&self, section: Section) -> bool {
        self.only.is_none_or(|s| s == section)
    }
}

fn parse_args(args: impl IntoIterator<Item = String>) -> BenchResult<Option<Config>> {
    let mut quick = false;
    let mut reps = None;
    let mut only = None;
    let mut array_n = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--only" => {
                let s = args.next().ok_or(
                    "--only needs a section: schedulers, distributed, transfer, actors or array",
                )?;
                only = Some(match s.as_str() {
                    "schedulers" => Section::Schedulers,
                    "distributed" => Section::Distributed,
                    "transfer" => Section::Transfer,
                    "actors" => Section::Actors,
                    "array" => Section::Array,
                    other => {
                        return Err(format!(
                            "--only takes schedulers, distributed, transfer, actors or array, got `{other}`"
                        )
                        .into())
                    }
                });
            }
            "--array-n" => {
                let n = args
                    .next()
                    .ok_or("--array-n needs a number, e.g. --array-n 10000")?;
                let n: usize = n
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("--array-n needs a positive number, got `{n}`"))?;
                array_n = Some(n);
            }
            "--reps" => {
                let n = args.next().ok_or("--reps needs a number, e.g. --reps 5")?;
                let n: usize = n
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("--reps needs a positive number, got `{n}`"))?;
                reps = Some(n);
            }
            "--help" | "-h" => return Ok(None),
            other => return Err(format!("unknown argument `{other}`\n\n{USAGE}").into()),
        }
    }
    let mut array = if quick {
        array::Sizes::quick(reps.unwrap_or(1))
    } else {
        array::Sizes::full(reps.unwrap_or(3))
    };
    if let Some(n) = array_n {
        array = array::Sizes::with_n(n, array.dot_n, array.reps);
    }
    Ok(Some(if quick {
        Config {
            tasks: 10_000,
            big: 100_000,
            reps: reps.unwrap_or(3),
            only,
            array,
        }
    } else {
        Config {
            tasks: 100_000,
            big: 1_000_000,
            reps: reps.unwrap_or(7),
            only,
            array,
        }
    }))
}

// ---------------------------------------------------------------------------
// The work: ops, inputs, graphs and their expected results

fn inc(x: u64) -> u64 {
    x.wrapping_add(1)
}

fn add(a: u64, b: u64) -> u64 {
    a.wrapping_add(b)
}

/// The two ops every runner calls, built once.
struct Ops {
    inc: Arc<dyn Op>,
    add: Arc<dyn Op>,
}

impl Ops {
    fn new() -> Ops {
        Ops {
            inc: fn_op(inc),
            add: fn_op(add),
        }
    }
}

/// Calls `op` through [`Op::call`], as a task would. The benchmark's ops cannot
/// fail on `u64` inputs, so a failure is a bug of the benchmark.
#[inline]
fn call(op: &Arc<dyn Op>, args: &[Value]) -> Value {
    match op.call(args) {
        Ok(v) => v,
        Err(e) => panic!("bug in the benchmark: `{}` failed: {e}", op.name()),
    }
}

fn as_u64(v: &Value) -> BenchResult<u64> {
    Ok(*v.downcast_ref::<u64>()?)
}

fn sum_values(values: &[Value]) -> BenchResult<u64> {
    values
        .iter()
        .try_fold(0u64, |acc, v| Ok(acc.wrapping_add(as_u64(v)?)))
}

/// `1 + 2 + ... + n`, by a plain loop, checked against the closed formula.
fn sum_1_to(n: u64) -> u64 {
    let by_loop = (1..=n).fold(0u64, u64::wrapping_add);
    let by_formula = if n.is_multiple_of(2) {
        (n / 2).wrapping_mul(n + 1)
    } else {
        n.wrapping_mul(n.div_ceil(2))
    };
    assert_eq!(
        by_loop, by_formula,
        "the expected sum disagrees with itself"
    );
    by_loop
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ShapeKind {
    Flat,
    Chain,
    Tree,
}

/// One benchmark graph, with the sum its outputs must have.
struct Shape {
    kind: ShapeKind,
    name: &'static str,
    graph: Graph,
    outputs: Vec<Key>,
    /// The literal inputs, as the graph holds them (`0..n` for flat, the leaves
    /// for a tree): the `Op::call` baselines call the ops on these.
    inputs: Vec<Value>,
    expected: u64,
}

impl Shape {
    /// The `n` of the shape's work: tasks for flat and chain, leaves for a tree.
    fn size(&self) -> u64 {
        match self.kind {
            ShapeKind::Chain => self.graph.len() as u64,
            ShapeKind::Flat | ShapeKind::Tree => self.inputs.len() as u64,
        }
    }
}

/// `n` independent tasks `inc(i)`, all of them outputs. Sum: `1 + ... + n`.
fn flat(n: u64, ops: &Ops) -> Shape {
    let name: Arc<str> = "flat".into();
    let inputs: Vec<Value> = (0..n).map(Value::new).collect();
    let mut graph = Graph::with_capacity(n as usize);
    let mut outputs = Vec::with_capacity(n as usize);
    for (i, input) in inputs.iter().enumerate() {
        let key = Key::new(name.clone(), [i as u64]);
        let task = Task::new(ops.inc.clone(), vec![Arg::Value(input.clone())]);
        graph.insert(key.clone(), task);
        outputs.push(key);
    }
    Shape {
        kind: ShapeKind::Flat,
        name: "flat",
        graph,
        outputs,
        inputs,
        expected: sum_1_to(n),
    }
}

/// `n` tasks, `inc(0)` then `inc(previous)`. Result: `n`.
fn chain(n: u64, ops: &Ops) -> Shape {
    let name: Arc<str> = "chain".into();
    let inputs = vec![Value::new(0u64)];
    let mut graph = Graph::with_capacity(n as usize);
    let mut previous = Key::new(name.clone(), [0]);
    graph.insert(
        previous.clone(),
        Task::new(ops.inc.clone(), vec![Arg::Value(inputs[0].clone())]),
    );
    for i in 1..n {
        let key = Key::new(name.clone(), [i]);
        graph.insert(
            key.clone(),
            Task::new(ops.inc.clone(), vec![Arg::Key(previous)]),
        );
        previous = key;
    }
    Shape {
        kind: ShapeKind::Chain,
        name: "chain",
        graph,
        outputs: vec![previous],
        inputs,
        expected: n,
    }
}

/// A binary tree reduction over `leaves` leaves `inc(i)`, combined pairwise by
/// `add`: `2 * leaves - 1` tasks, keys `("tree", lo, hi)` for the range each
/// covers. Sum: `1 + ... + leaves`.
fn tree(leaves: u64, ops: &Ops) -> Shape {
    fn build(
        graph: &mut Graph,
        name: &Arc<str>,
        ops: &Ops,
        inputs: &[Value],
        lo: u64,
        hi: u64,
    ) -> Key {
        let key = Key::new(name.clone(), [lo, hi]);
        let task = if hi - lo == 1 {
            Task::new(
                ops.inc.clone(),
                vec![Arg::Value(inputs[lo as usize].clone())],
            )
        } else {
            let mid = lo + (hi - lo) / 2;
            let left = build(graph, name, ops, inputs, lo, mid);
            let right = build(graph, name, ops, inputs, mid, hi);
            Task::new(ops.add.clone(), vec![Arg::Key(left), Arg::Key(right)])
        };
        graph.insert(key.clone(), task);
        key
    }
    let leaves = leaves.max(1);
    let name: Arc<str> = "tree".into();
    let inputs: Vec<Value> = (0..leaves).map(Value::new).collect();
    let mut graph = Graph::with_capacity(2 * leaves as usize);
    let root = build(&mut graph, &name, ops, &inputs, 0, leaves);
    Shape {
        kind: ShapeKind::Tree,
        name: "tree",
        graph,
        outputs: vec![root],
        inputs,
        expected: sum_1_to(leaves),
    }
}

// ---------------------------------------------------------------------------
// Baselines: the same work without a scheduler

/// The raw loop: the shape's work on plain `u64`s.
fn raw_loop(kind: ShapeKind, n: u64) -> u64 {
    fn tree(lo: u64, hi: u64) -> u64 {
        if hi - lo == 1 {
            return inc(black_box(lo));
        }
        let mid = lo + (hi - lo) / 2;
        add(tree(lo, mid), tree(mid, hi))
    }
    match kind {
        ShapeKind::Flat => (0..n).map(|i| inc(black_box(i))).fold(0, add),
        ShapeKind::Chain => (0..n).fold(0, |acc, _| inc(black_box(acc))),
        ShapeKind::Tree => tree(0, n),
    }
}

/// The `Op::call` loop: the same op objects on the same `Value`s, in the order
/// the graph runs them, with the outputs collected as a scheduler returns them.
fn op_loop(shape: &Shape, ops: &Ops) -> BenchResult<u64> {
    fn tree(ops: &Ops, inputs: &[Value]) -> Value {
        if let [leaf] = inputs {
            return call(&ops.inc, std::slice::from_ref(leaf));
        }
        let (left, right) = inputs.split_at(inputs.len() / 2);
        call(&ops.add, &[tree(ops, left), tree(ops, right)])
    }
    match shape.kind {
        ShapeKind::Flat => {
            let outs: Vec<Value> = shape
                .inputs
                .iter()
                .map(|v| call(&ops.inc, std::slice::from_ref(v)))
                .collect();
            sum_values(&outs)
        }
        ShapeKind::Chain => {
            let mut v = shape.inputs[0].clone();
            for _ in 0..shape.graph.len() {
                v = call(&ops.inc, std::slice::from_ref(&v));
            }
            as_u64(&v)
        }
        ShapeKind::Tree => as_u64(&tree(ops, &shape.inputs)),
    }
}

/// rayon on plain `u64`s: `par_iter` (flat) or a `join` reduction (tree).
fn rayon_raw(kind: ShapeKind, n: u64) -> Option<u64> {
    fn tree(lo: u64, hi: u64) -> u64 {
        if hi - lo == 1 {
            return inc(black_box(lo));
        }
        let mid = lo + (hi - lo) / 2;
        let (a, b) = rayon::join(|| tree(lo, mid), || tree(mid, hi));
        add(a, b)
    }
    match kind {
        ShapeKind::Flat => Some(
            (0..n)
                .into_par_iter()
                .map(|i| inc(black_box(i)))
                .reduce(|| 0, add),
        ),
        ShapeKind::Chain => None,
        ShapeKind::Tree => Some(tree(0, n)),
    }
}

/// rayon through `Op::call` on `Value`s: the same work the schedulers do.
fn rayon_ops(shape: &Shape, ops: &Ops) -> Option<BenchResult<u64>> {
    fn tree(ops: &Ops, inputs: &[Value]) -> Value {
        if let [leaf] = inputs {
            return call(&ops.inc, std::slice::from_ref(leaf));
        }
        let (left, right) = inputs.split_at(inputs.len() / 2);
        let (a, b) = rayon::join(|| tree(ops, left), || tree(ops, right));
        call(&ops.add, &[a, b])
    }
    match shape.kind {
        ShapeKind::Flat => {
            let outs: Vec<Value> = shape
                .inputs
                .par_iter()
                .map(|v| call(&ops.inc, std::slice::from_ref(v)))
                .collect();
            Some(sum_values(&outs))
        }
        ShapeKind::Chain => None,
        ShapeKind::Tree => Some(as_u64(&tree(ops, &shape.inputs))),
    }
}

// ---------------------------------------------------------------------------
// Timing

/// The median of `reps` timed runs of `f`, after one untimed warm-up; every run
/// must return `expected`.
fn measure(
    reps: usize,
    expected: u64,
    what: &str,
    mut f: impl FnMut() -> BenchResult<u64>,
) -> BenchResult<Duration> {
    let check = |got: BenchResult<u64>| -> BenchResult<()> {
        let got = got.map_err(|e| format!("{what}: failed: {e}"))?;
        if got != expected {
            return Err(format!("{what}: wrong result {got}, expected {expected}").into());
        }
        Ok(())
    };
    check(f())?;
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        let start = Instant::now();
        let got = f();
        times.push(start.elapsed());
        check(got)?;
    }
    Ok(median(times))
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

// ---------------------------------------------------------------------------
// Report

/// What a row of the table is.
enum Runner {
    Baseline,
    Scheduler { target_us: f64 },
}

struct Row {
    runner: String,
    kind: Runner,
    /// `None`: not applicable (rayon on a chain).
    time: Option<Duration>,
}

/// A scheduler's worst figure against its target.
struct Verdict {
    what: String,
    us_per_task: f64,
    target_us: f64,
}

fn print_header() {
    println!(
        "{:<6} {:<26} {:>7} {:>10} {:>9} {:>10} {:>9} {:>10}  target",
        "shape", "runner", "tasks", "median ms", "µs/task", "overhead", "x Op", "x raw"
    );
    println!(
        "{:<6} {:<26} {:>7} {:>10} {:>9} {:>10} {:>9} {:>10}",
        "", "", "", "", "", "µs/task", "loop", "loop"
    );
}

fn print_rows(shape: &Shape, rows: &[Row], verdicts: &mut Vec<Verdict>) {
    let tasks = shape.graph.len() as f64;
    let find = |name: &str| {
        rows.iter()
            .find(|r| r.runner == name)
            .and_then(|r| r.time)
            .map_or(f64::NAN, |t| t.as_secs_f64())
    };
    let raw = find("raw loop (u64)");
    let op = find("Op::call loop");
    for row in rows {
        let mut line = format!("{:<6} {:<26} {:>7}", shape.name, row.runner, tasks);
        let Some(t) = row.time else {
            let _ = write!(line, " {:>10}  (a chain has no parallelism)", "n/a");
            println!("{line}");
            continue;
        };
        let t = t.as_secs_f64();
        let us = t * 1e6 / tasks;
        let _ = write!(line, " {:>10.2} {:>9.3}", t * 1e3, us);
        match row.kind {
            Runner::Baseline => {
                let _ = write!(line, " {:>10}", "");
            }
            Runner::Scheduler { .. } => {
                let _ = write!(line, " {:>10.3}", (t - op) * 1e6 / tasks);
            }
        }
        let _ = write!(line, " {:>8.2}x {:>9.1}x", t / op, t / raw);
        if let Runner::Scheduler { target_us } = row.kind {
            let ok = if us <= target_us { "ok" } else { "MISSED" };
            let _ = write!(line, "  <= {target_us} µs: {ok}");
            verdicts.push(Verdict {
                what: format!("{} on {}", row.runner, shape.name),
                us_per_task: us,
                target_us,
            });
        }
        println!("{line}");
    }
    println!();
}

// ---------------------------------------------------------------------------
// The benchmarks

fn bench_shape(
    shape: &Shape,
    ops: &Ops,
    schedulers: &[(String, &dyn Scheduler, f64)],
    reps: usize,
) -> BenchResult<Vec<Row>> {
    let expected = shape.expected;
    let kind = shape.kind;
    let n = shape.size();
    let what = |runner: &str| format!("{} / {runner}", shape.name);
    let baseline = |runner: &str, time| Row {
        runner: runner.to_owned(),
        kind: Runner::Baseline,
        time,
    };
    let mut rows = Vec::new();
    let t = measure(reps, expected, &what("raw loop"), || Ok(raw_loop(kind, n)))?;
    rows.push(baseline("raw loop (u64)", Some(t)));
    let t = measure(reps, expected, &what("Op::call loop"), || {
        op_loop(shape, ops)
    })?;
    rows.push(baseline("Op::call loop", Some(t)));
    let (raw_name, op_name) = match kind {
        ShapeKind::Tree => ("rayon join (u64)", "rayon join (Op::call)"),
        _ => ("rayon par_iter (u64)", "rayon par_iter (Op::call)"),
    };
    let (raw, op) = if kind == ShapeKind::Chain {
        (None, None)
    } else {
        let no_rayon = || -> Box<dyn Error> { "bug: no rayon baseline".into() };
        let raw = measure(reps, expected, &what(raw_name), || {
            rayon_raw(kind, n).ok_or_else(no_rayon)
        })?;
        let op = measure(reps, expected, &what(op_name), || {
            rayon_ops(shape, ops).unwrap_or_else(|| Err(no_rayon()))
        })?;
        (Some(raw), Some(op))
    };
    rows.push(baseline(raw_name, raw));
    rows.push(baseline(op_name, op));
    for (name, scheduler, target_us) in schedulers {
        let t = measure(reps, expected, &what(name), || {
            let values = scheduler.compute(&shape.graph, &shape.outputs)?;
            if values.len() != shape.outputs.len() {
                return Err(format!(
                    "{} outputs asked for, {} returned",
                    shape.outputs.len(),
                    values.len()
                )
                .into());
            }
            sum_values(&values)
        })?;
        rows.push(Row {
            runner: name.clone(),
            kind: Runner::Scheduler {
                target_us: *target_us,
            },
            time: Some(t),
        });
    }
    Ok(rows)
}

/// Build, cull and order a tree graph of about `tasks` tasks; returns its
/// number of tasks and the total seconds.
fn bench_big_graph(tasks: u64, ops: &Ops, reps: usize) -> BenchResult<(u64, f64)> {
    let leaves = tasks.div_ceil(2);
    let mut phases: [Vec<Duration>; 6] = Default::default();
    let mut last = None;
    // One warm-up round, then `reps` timed ones.
    for round in 0..=reps {
        // Drop the previous round's graphs first: their allocations are not ours to time.
        drop(last.take());
        // Freeing a million small blocks leaves glibc's allocator with deferred
        // work (`malloc_consolidate`) that its next large allocation pays for:
        // make that happen here, untimed, not inside the next round's build.
        drop(black_box(Vec::<u8>::with_capacity(64 << 10)));
        let start = Instant::now();
        let shape = tree(leaves, ops);
        let build = start.elapsed();
        let start = Instant::now();
        let culled = cull(&shape.graph, &shape.outputs)?;
        let culling = start.elapsed();
        let start = Instant::now();
        let plan = Plan::new(&culled, &shape.outputs)?;
        let planning = start.elapsed();
        let start = Instant::now();
        let priorities = order(&culled, &shape.outputs)?;
        let ordering = start.elapsed();
        check_plan(&shape, &culled, &plan, priorities.len())?;
        if round > 0 {
            let total = build + culling + planning;
            let total_order = build + culling + ordering;
            for (phase, t) in
                phases
                    .iter_mut()
                    .zip([build, culling, planning, ordering, total, total_order])
            {
                phase.push(t);
            }
        }
        last = Some((shape, culled));
    }
    // Each phase's median, and the median of the rounds' totals.
    let [build, culling, planning, ordering, total, total_order] =
        phases.map(|p| median(p).as_secs_f64());
    let n = 2 * leaves - 1;
    println!("{n}-task tree-reduction graph (medians of {reps} rounds after a warm-up):");
    println!("  build                        {:>8.3} s", build);
    println!("  cull (dask_core::cull)       {:>8.3} s", culling);
    println!("  order (Plan::new)            {:>8.3} s", planning);
    println!(
        "  total build + cull + order   {:>8.3} s   target < {BIG_GRAPH_TARGET_S} s: {}",
        total,
        if total < BIG_GRAPH_TARGET_S {
            "ok"
        } else {
            "MISSED"
        }
    );
    println!(
        "  (dask_core::order, the priorities as a key map: {:.3} s; total with it {:.3} s)",
        ordering, total_order
    );

    // Check: the sync scheduler computes the whole large graph right.
    let (shape, culled) = last.ok_or("no round ran")?;
    let start = Instant::now();
    let values = SyncScheduler::new().compute(&culled, &shape.outputs)?;
    let t = start.elapsed().as_secs_f64();
    let got = sum_values(&values)?;
    if got != shape.expected {
        return Err(format!(
            "sync compute of the {n}-task graph: wrong result {got}, expected {}",
            shape.expected
        )
        .into());
    }
    println!(
        "  check: sync compute of it     {:>8.3} s ({:.3} µs/task), result correct",
        t,
        t * 1e6 / n as f64
    );
    Ok((n, total))
}

/// The culled graph and the plan hold every task, in a topological order that
/// ends with the root.
fn check_plan(shape: &Shape, culled: &Graph, plan: &Plan, ordered: usize) -> BenchResult<()> {
    let n = shape.graph.len();
    if culled.len() != n || plan.len() != n || ordered != n {
        return Err(format!(
            "large graph: {n} tasks built, {} after cull, {} planned, {ordered} ordered",
            culled.len(),
            plan.len()
        )
        .into());
    }
    if let Some(i) = (0..n).find(|&i| plan.args(i).iter().any(|&d| d as usize >= i)) {
        return Err(format!("large graph: task {} runs before its inputs", plan.key(i)).into());
    }
    if plan.key(n - 1) != &shape.outputs[0] {
        return Err("large graph: the root is not the last task".into());
    }
    Ok(())
}

fn run(config: Config) -> BenchResult<()> {
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; the figures mean little (use `cargo xtask bench`)\n");
    }
    let scheduler_targets = if config.wants(Section::Schedulers) {
        Some(run_schedulers(&config)?)
    } else {
        None
    };
    if config.wants(Section::Distributed) {
        let quick = config.tasks < 100_000;
        distributed::run(&distributed::Sizes {
            round_trips: if quick { 200 } else { 2000 },
            map_tasks: if quick { 2_000 } else { 20_000 },
            tree_leaves: if quick { 2_000 } else { 20_000 },
            reps: config.reps.min(5),
        })?;
    }
    if config.wants(Section::Transfer) {
        let quick = config.tasks < 100_000;
        transfer::run(&transfer::Sizes {
            mb: if quick { 16 } else { 800 },
            round_trips: if quick { 200 } else { 2000 },
            reps: config.reps.min(5),
        })?;
    }
    if config.wants(Section::Actors) {
        let quick = config.tasks < 100_000;
        actors::run(&actors::Sizes {
            sequential: if quick { 2_000 } else { 10_000 },
            pipelined: if quick { 20_000 } else { 100_000 },
            reps: config.reps.min(5),
        })?;
        coordination::run(&coordination::Sizes {
            round_trips: if quick { 1_000 } else { 5_000 },
            messages: if quick { 5_000 } else { 50_000 },
        })?;
    }
    if let Some((verdicts, big, total)) = scheduler_targets {
        print_scheduler_targets(&verdicts, big, total);
    }
    if config.wants(Section::Array) {
        array::run(&config.array)?;
    }
    Ok(())
}

/// The scheduler section: the three shapes, then the large graph. Returns the
/// verdicts and the large graph's size and total time for the summary.
fn run_schedulers(config: &Config) -> BenchResult<(Vec<Verdict>, u64, f64)> {
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let ops = Ops::new();
    let threaded_1 = ThreadedScheduler::with_threads(1)?;
    let threaded_n = ThreadedScheduler::with_threads(cores)?;
    let sync = SyncScheduler::new();
    let schedulers: Vec<(String, &dyn Scheduler, f64)> = vec![
        ("sync".into(), &sync, SYNC_TARGET_US),
        ("threaded, 1 thread".into(), &threaded_1, THREADED_TARGET_US),
        (
            format!("threaded, {cores} threads"),
            &threaded_n,
            THREADED_TARGET_US,
        ),
    ];
    println!(
        "dask-rs scheduler benchmark: {} no-op tasks per shape, {cores} cores, rayon on {} threads,",
        config.tasks,
        rayon::current_num_threads()
    );
    println!(
        "median of {} timed runs after a warm-up; every run's result checked.\n",
        config.reps
    );
    println!("µs/task: the whole run divided by the tasks; a scheduler's figure is the whole");
    println!(
        "`compute` call (plan, run, outputs). overhead: (scheduler - Op::call loop) / tasks.\n"
    );
    print_header();
    let mut verdicts = Vec::new();
    let shapes = [
        flat(config.tasks, &ops),
        chain(config.tasks, &ops),
        tree(config.tasks / 2, &ops),
    ];
    for shape in &shapes {
        let rows = bench_shape(shape, &ops, &schedulers, config.reps)?;
        print_rows(shape, &rows, &mut verdicts);
    }
    drop(shapes);

    let (big, total) = bench_big_graph(config.big, &ops, config.reps.min(5))?;
    Ok((verdicts, big, total))
}

fn print_scheduler_targets(verdicts: &[Verdict], big: u64, total: f64) {
    println!("\ntargets (issue 2), µs/task including the op's own work:");
    for (who, target) in [("sync", SYNC_TARGET_US), ("threaded", THREADED_TARGET_US)] {
        let worst = verdicts
            .iter()
            .filter(|v| v.target_us == target && v.what.starts_with(who))
            .max_by(|a, b| a.us_per_task.total_cmp(&b.us_per_task));
        if let Some(v) = worst {
            println!(
                "  {who:<9} <= {target} µs/task: worst {:.3} ({}): {}",
                v.us_per_task,
                v.what,
                if v.us_per_task <= target {
                    "met"
                } else {
                    "MISSED"
                }
            );
        }
    }
    println!(
        "  {}-task graph build + cull + order < {BIG_GRAPH_TARGET_S} s: {total:.3} s: {}",
        big,
        if total < BIG_GRAPH_TARGET_S {
            "met"
        } else {
            "MISSED"
        }
    );
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let first = args.first().map(String::as_str);
    let result = if first == Some(transfer::WORKER_FLAG) {
        match args.get(1) {
            Some(addr) => transfer::run_worker(addr),
            None => Err("--worker needs the scheduler's address".into()),
        }
    } else if first == Some(transfer::LATENCY_FLAG) {
        match args.get(1).and_then(|n| n.parse().ok()) {
            Some(round_trips) => transfer::run_latency_probe(round_trips),
            None => Err("--latency-probe needs a number of round trips".into()),
        }
    } else {
        run_main(args)
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_main(args: Vec<String>) -> BenchResult<()> {
    parse_args(args).and_then(|config| match config {
        Some(config) => run(config),
        None => {
            println!("{USAGE}");
            Ok(())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every baseline and the sync scheduler agree with the expected sums, on
    /// sizes that are not powers of two.
    #[test]
    fn baselines_and_graphs_agree() {
        let ops = Ops::new();
        for n in [1u64, 2, 7, 100] {
            for shape in [flat(n, &ops), chain(n, &ops), tree(n, &ops)] {
                let len = shape.size();
                assert_eq!(raw_loop(shape.kind, len), shape.expected, "{}", shape.name);
                assert_eq!(op_loop(&shape, &ops).unwrap(), shape.expected);
                if let Some(r) = rayon_raw(shape.kind, len) {
                    assert_eq!(r, shape.expected);
                }
                if let Some(r) = rayon_ops(&shape, &ops) {
                    assert_eq!(r.unwrap(), shape.expected);
                }
                let values = SyncScheduler::new()
                    .compute(&shape.graph, &shape.outputs)
                    .unwrap();
                assert_eq!(sum_values(&values).unwrap(), shape.expected);
            }
            assert_eq!(tree(n, &ops).graph.len() as u64, 2 * n - 1);
        }
    }

    #[test]
    fn arguments() {
        let args = |a: &[&str]| parse_args(a.iter().map(|s| s.to_string()));
        assert_eq!(args(&["--quick"]).unwrap().unwrap().tasks, 10_000);
        assert_eq!(args(&["--reps", "2"]).unwrap().unwrap().reps, 2);
        assert!(args(&["--help"]).unwrap().is_none());
        assert!(args(&["--reps", "0"]).is_err());
        assert!(args(&["--fast"])
            .unwrap_err()
            .to_string()
            .contains("--fast"));
        let quick = args(&["--quick"]).unwrap().unwrap();
        assert_eq!(
            (quick.array.n, quick.array.chunk, quick.array.reps),
            (2000, 200, 1)
        );
        assert!(quick.wants(Section::Array) && quick.wants(Section::Schedulers));
        let only = args(&["--only", "array", "--array-n", "1000"])
            .unwrap()
            .unwrap();
        assert_eq!(only.only, Some(Section::Array));
        assert!(!only.wants(Section::Schedulers) && !only.wants(Section::Distributed));
        assert_eq!(
            (only.array.n, only.array.chunk, only.array.dot_n),
            (1000, 100, 4000)
        );
        assert!(args(&["--only", "bogus"]).is_err());
        assert!(args(&["--array-n", "0"]).is_err());
        assert!(args(&["--only"]).is_err());
    }
}
