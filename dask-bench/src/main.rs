//! Scheduler benchmarks, run by `cargo xtask bench [--quick]` (release build).
//!
//! Scheduling overhead per task on 100k tiny tasks in three shapes (flat:
//! independent tasks, all outputs; chain: each task reads the previous; tree: a
//! binary reduction), on the sync and threaded schedulers, next to baselines
//! doing the same trivial work in the same run: a raw loop, a loop calling the
//! same op through `Op::call` on `Value`s, and rayon. Then the time to build,
//! cull and order (plan) a 1M-task graph. Results are checked against the raw
//! loop so a broken scheduler cannot post a fast wrong figure. Medians of
//! several repetitions after a warm-up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dask_core::op::fn_op;
use dask_core::{cull, Arg, Graph, Key, Op, Plan, Scheduler, Task, Value};
use dask_sync_scheduler::SyncScheduler;
use dask_threaded::ThreadedScheduler;

fn inc(x: u64) -> u64 {
    x.wrapping_add(1)
}

fn add(a: u64, b: u64) -> u64 {
    a.wrapping_add(b)
}

/// A benchmark graph with what its outputs must sum to.
struct Shape {
    name: &'static str,
    graph: Graph,
    outputs: Vec<Key>,
    expected: u64,
}

fn flat(n: u64, inc: &Arc<dyn Op>) -> Shape {
    let mut graph = Graph::with_capacity(n as usize);
    let outputs: Vec<Key> = (0..n).map(|i| Key::new("flat", [i])).collect();
    for (i, k) in outputs.iter().enumerate() {
        graph.insert(
            k.clone(),
            Task::new(inc.clone(), vec![Arg::value(i as u64)]),
        );
    }
    let expected = (0..n).map(inc_raw).fold(0u64, u64::wrapping_add);
    Shape {
        name: "flat",
        graph,
        outputs,
        expected,
    }
}

fn chain(n: u64, inc: &Arc<dyn Op>) -> Shape {
    let mut graph = Graph::with_capacity(n as usize);
    graph.insert(
        Key::new("chain", [0]),
        Task::new(inc.clone(), vec![Arg::value(0u64)]),
    );
    for i in 1..n {
        graph.insert(
            Key::new("chain", [i]),
            Task::new(inc.clone(), vec![Arg::Key(Key::new("chain", [i - 1]))]),
        );
    }
    Shape {
        name: "chain",
        graph,
        outputs: vec![Key::new("chain", [n - 1])],
        expected: n,
    }
}

/// A binary tree reduction with `leaves` leaves (about 2 x leaves tasks).
fn tree(leaves: u64, inc: &Arc<dyn Op>, add: &Arc<dyn Op>) -> Shape {
    let mut graph = Graph::with_capacity(2 * leaves as usize);
    let mut level: Vec<Key> = (0..leaves)
        .map(|i| {
            let k = Key::new("tree-0", [i]);
            graph.insert(k.clone(), Task::new(inc.clone(), vec![Arg::value(i)]));
            k
        })
        .collect();
    let mut depth = 1;
    while level.len() > 1 {
        let name: Arc<str> = format!("tree-{depth}").into();
        level = level
            .chunks(2)
            .enumerate()
            .map(|(j, pair)| {
                let k = Key::new(name.clone(), [j as u64]);
                let task = match pair {
                    [a, b] => {
                        Task::new(add.clone(), vec![Arg::Key(a.clone()), Arg::Key(b.clone())])
                    }
                    [a] => Task::alias(a.clone()),
                    _ => unreachable!("chunks(2)"),
                };
                graph.insert(k.clone(), task);
                k
            })
            .collect();
        depth += 1;
    }
    let expected = (0..leaves).map(inc_raw).fold(0u64, u64::wrapping_add);
    Shape {
        name: "tree",
        graph,
        outputs: level,
        expected,
    }
}

fn inc_raw(x: u64) -> u64 {
    x.wrapping_add(1)
}

fn sum_values(values: &[Value]) -> u64 {
    values
        .iter()
        .map(|v| *v.downcast_ref::<u64>().expect("u64"))
        .fold(0, u64::wrapping_add)
}

/// Median of `reps` timed runs of `f` after one warm-up; `f` returns the sum to check.
fn time(reps: usize, expected: u64, what: &str, mut f: impl FnMut() -> u64) -> Duration {
    assert_eq!(f(), expected, "{what}: wrong result");
    let mut times: Vec<Duration> = (0..reps)
        .map(|_| {
            let start = Instant::now();
            let got = f();
            let t = start.elapsed();
            assert_eq!(got, expected, "{what}: wrong result");
            t
        })
        .collect();
    times.sort();
    times[reps / 2]
}

/// The same work as the graph, as a plain loop calling the ops through `Op::call`.
fn op_loop(shape: &Shape) -> u64 {
    let plan = Plan::new(&shape.graph, &shape.outputs).expect("valid");
    let mut values: Vec<Option<Value>> = vec![None; plan.len()];
    for i in 0..plan.len() {
        let mut args = plan.args(i).iter();
        values[i] = Some(
            plan.task(i)
                .execute(plan.key(i), |_| {
                    values[*args.next().expect("arg") as usize]
                        .clone()
                        .expect("computed")
                })
                .expect("no failure"),
        );
    }
    let outs: Vec<Value> = plan
        .outputs()
        .iter()
        .map(|&o| values[o as usize].clone().expect("output"))
        .collect();
    sum_values(&outs)
}

fn rayon_tree(lo: u64, hi: u64) -> u64 {
    if hi - lo <= 1 {
        return inc_raw(lo);
    }
    let mid = lo + (hi - lo) / 2;
    let (a, b) = rayon::join(|| rayon_tree(lo, mid), || rayon_tree(mid, hi));
    a.wrapping_add(b)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (n, big, reps) = if quick {
        (10_000u64, 100_000u64, 3)
    } else {
        (100_000u64, 1_000_000u64, 5)
    };
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let inc_op = fn_op(inc);
    let add_op = fn_op(add);
    println!("dask-rs scheduler benchmark: {n} tasks per shape, {cores} cores, median of {reps}\n");
    println!(
        "{:<6} {:<22} {:>8} {:>10} {:>13} {:>13}",
        "shape", "runner", "tasks", "us/task", "vs Op loop", "vs raw loop"
    );

    let threaded_1 = ThreadedScheduler::with_threads(1).expect("1 thread");
    let threaded_n = ThreadedScheduler::with_threads(cores).expect("threads");
    for shape in [
        flat(n, &inc_op),
        chain(n, &inc_op),
        tree(n / 2, &inc_op, &add_op),
    ] {
        let tasks = shape.graph.len() as f64;
        let expected = shape.expected;
        let raw: Box<dyn FnMut() -> u64> = match shape.name {
            "flat" => Box::new(|| {
                (0..n)
                    .map(|i| std::hint::black_box(inc_raw(i)))
                    .fold(0, u64::wrapping_add)
            }),
            "chain" => Box::new(|| (0..n).fold(0, |acc, _| std::hint::black_box(inc_raw(acc)))),
            _ => Box::new(|| {
                (0..n / 2)
                    .map(|i| std::hint::black_box(inc_raw(i)))
                    .fold(0, u64::wrapping_add)
            }),
        };
        let mut runs: Vec<(String, Duration)> = Vec::new();
        runs.push(("raw loop".into(), time(reps, expected, "raw", raw)));
        runs.push((
            "loop over Op::call".into(),
            time(reps, expected, "op loop", || op_loop(&shape)),
        ));
        match shape.name {
            "flat" => {
                use rayon::prelude::*;
                let r = time(reps, expected, "rayon", || {
                    (0..n)
                        .into_par_iter()
                        .map(inc_raw)
                        .reduce(|| 0, u64::wrapping_add)
                });
                runs.push(("rayon".into(), r));
            }
            "tree" => runs.push((
                "rayon join".into(),
                time(reps, expected, "rayon", || rayon_tree(0, n / 2)),
            )),
            _ => {} // a chain has no parallelism for rayon to use
        }
        let schedulers: [(String, &dyn Scheduler); 3] = [
            ("sync".into(), &SyncScheduler),
            ("threaded, 1 thread".into(), &threaded_1),
            (format!("threaded, {cores} threads"), &threaded_n),
        ];
        for (name, s) in schedulers {
            let t = time(reps, expected, &name, || {
                sum_values(&s.compute(&shape.graph, &shape.outputs).expect("compute"))
            });
            runs.push((name, t));
        }
        let raw_t = runs[0].1.as_secs_f64();
        let op_t = runs[1].1.as_secs_f64();
        for (name, t) in &runs {
            let t = t.as_secs_f64();
            println!(
                "{:<6} {:<22} {:>8} {:>10.3} {:>12.2}x {:>12.1}x",
                shape.name,
                name,
                tasks,
                t * 1e6 / tasks,
                t / op_t,
                t / raw_t
            );
        }
        println!();
    }
    println!(
        "targets: threaded <= 2 us/task, sync <= 1 us/task (scheduling overhead, plan included)\n"
    );

    // Building, culling and ordering a large graph.
    let (mut build, mut culling, mut ordering) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        let start = Instant::now();
        let shape = tree(big / 2, &inc_op, &add_op);
        build.push(start.elapsed());
        let start = Instant::now();
        let culled = cull(&shape.graph, &shape.outputs).expect("valid");
        culling.push(start.elapsed());
        let start = Instant::now();
        let plan = Plan::new(&culled, &shape.outputs).expect("valid");
        ordering.push(start.elapsed());
        assert_eq!(plan.len(), shape.graph.len());
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64()
    };
    let (b, c, o) = (
        median(&mut build),
        median(&mut culling),
        median(&mut ordering),
    );
    println!("{big}-task graph: build {b:.3} s, cull {c:.3} s, order (plan) {o:.3} s, total {:.3} s (target < 2 s)", b + c + o);
}
