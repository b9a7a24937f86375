//! Diagnostics overhead: the same graph on a LocalCluster with and without
//! the dashboard (its scheduler plugin and HTTP server) and the task stream
//! (the scheduler's ring of workers' task timings), runs interleaved.
//!
//! ```text
//! cargo run --release -p dask-bench --example dashboard_overhead -- [--tasks 100000] [--reps 5]
//! ```
//!
//! The graph is a binary tree reduction: `tasks / 2` leaves `inc(i)` summed
//! pairwise by `add` up to one root, every task a no-op-sized op, so the time
//! is scheduling. Every run's result is checked against a closed formula.
//! Each timed run has a fresh cluster in this process (after one warm-up
//! run on it), the two kinds alternating (with, without, without, with, ...)
//! so drift and machine load hit both alike: two long-lived clusters read
//! several percent apart even when neither has a dashboard, and `--null`
//! (both without) shows the method's own noise. During the runs with the
//! dashboard, a client reads its push stream (`/api/events?topics=status,graph,tasks`, what the
//! `/status` and `/tasks` pages open) at the pages' default rate, so the
//! cost of pushing is counted. Each figure is the median of `reps` runs; the
//! overhead is `(with - without) / without`, printed with every run's time
//! so noise shows. Each run is measured twice: wall time, and the CPU time
//! the whole process spent (user + system, from `/proc/self/stat`), which a
//! busy or descheduled VM disturbs far less. The CPU figure counts everything
//! the dashboard costs: its plugin, server, push stream and the page's
//! reader. A paired figure, the median of each rep's with/without ratio (the
//! two runs of a rep are back to back), cancels the host's slow drift.
//!
//! A second pair of figures isolates the scheduler's hot path: the same graph
//! driven through the sans-I/O `SchedulerState` (one simulated worker that
//! finishes every task at once) with and without the dashboard's plugin; no
//! sockets, so far less noise.

use std::error::Error;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dask_core::op::fn_op;
use dask_core::{Arg, Graph, Key, Op};
use dask_distributed::{Client, LocalCluster};

type BenchResult<T> = Result<T, Box<dyn Error>>;

const USAGE: &str = "usage: dashboard_overhead [--tasks N] [--reps R] [--workers W] [--threads T]

  --tasks N    tasks in the tree reduction (default 100000)
  --reps R     timed runs per cluster, median reported (default 7)
  --workers W  workers per cluster (default 1)
  --threads T  threads per worker (default: the machine's cores)
  --state-only only the state-machine figures (no cluster)
  --no-push    no client reads the dashboard's push stream during the runs
  --no-task-stream
               the cluster with the dashboard keeps no task stream either
               (isolates the dashboard's own cost)
  --null       both clusters without dashboard: the figures' own bias and
               noise (the overhead should read about 0)";

struct Config {
    tasks: usize,
    reps: usize,
    workers: usize,
    threads: u32,
    state_only: bool,
    no_push: bool,
    no_task_stream: bool,
    null: bool,
}

fn parse() -> BenchResult<Config> {
    let mut c = Config {
        tasks: 100_000,
        reps: 7,
        workers: 1,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        state_only: false,
        no_push: false,
        no_task_stream: false,
        null: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let switch = match flag.as_str() {
            "--state-only" => Some(&mut c.state_only),
            "--no-push" => Some(&mut c.no_push),
            "--no-task-stream" => Some(&mut c.no_task_stream),
            "--null" => Some(&mut c.null),
            _ => None,
        };
        if let Some(on) = switch {
            *on = true;
            continue;
        }
        if !["--tasks", "--reps", "--workers", "--threads"].contains(&flag.as_str()) {
            return Err(format!("unknown flag {flag:?}\n{USAGE}").into());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number = |v: &str| -> BenchResult<usize> {
            match v.parse::<usize>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(format!("{flag} wants a positive integer, got {v:?}\n{USAGE}").into()),
            }
        };
        match flag.as_str() {
            "--tasks" => c.tasks = number(&value)?.max(3),
            "--reps" => c.reps = number(&value)?,
            "--workers" => c.workers = number(&value)?,
            "--threads" => c.threads = u32::try_from(number(&value)?)?,
            other => return Err(format!("unknown flag {other:?}\n{USAGE}").into()),
        }
    }
    Ok(c)
}

/// A tree reduction of about `tasks` tasks; returns the graph, its root,
/// the expected sum (a closed formula) and each task's dependencies.
fn tree(tasks: usize) -> (Graph, Key, u64, Vec<(Key, Vec<Key>)>) {
    let mut deps = Vec::new();
    let inc: Arc<dyn Op> = fn_op(|x: u64| x + 1);
    let add: Arc<dyn Op> = fn_op(|a: u64, b: u64| a + b);
    let leaves = (tasks / 2).max(2) as u64;
    let mut g = Graph::new();
    let mut level: Vec<Key> = (0..leaves)
        .map(|i| {
            let k = Key::new("inc-0ver4ead", [i]);
            g.insert(
                k.clone(),
                dask_core::Task::new(inc.clone(), vec![Arg::value(i)]),
            );
            deps.push((k.clone(), Vec::new()));
            k
        })
        .collect();
    let mut depth = 0u64;
    while level.len() > 1 {
        depth += 1;
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        for (j, pair) in level.chunks(2).enumerate() {
            if let [a, b] = pair {
                let k = Key::new("add-0ver4ead", [depth, j as u64]);
                g.insert(
                    k.clone(),
                    dask_core::Task::new(
                        add.clone(),
                        vec![Arg::Key(a.clone()), Arg::Key(b.clone())],
                    ),
                );
                deps.push((k.clone(), vec![a.clone(), b.clone()]));
                next.push(k);
            } else {
                next.push(pair[0].clone());
            }
        }
        level = next;
    }
    // sum of (i + 1) for i < leaves
    let expected = leaves * (leaves + 1) / 2;
    (g, level.remove(0), expected, deps)
}

fn start(c: &Config, dashboard: bool) -> BenchResult<Client> {
    let b = LocalCluster::builder()
        .n_workers(c.workers)
        .threads_per_worker(c.threads);
    let b = if dashboard {
        b.dashboard_port(0)
    } else {
        b.no_dashboard()
    };
    // Capacity 0: workers still time each task; the scheduler drops the timings.
    let b = b.task_stream_capacity(task_stream_capacity(c, dashboard));
    Ok(Client::with_cluster(b.start()?)?)
}

/// The task stream's capacity on a cluster with or without the dashboard.
fn task_stream_capacity(c: &Config, dashboard: bool) -> usize {
    if dashboard && !c.no_task_stream {
        dask_distributed::task_stream::DEFAULT_TASK_STREAM_CAPACITY
    } else {
        0
    }
}

/// The order of a rep's two runs (`true`: the one with the dashboard),
/// alternating so that drift and machine load hit both alike.
fn order(rep: usize) -> [bool; 2] {
    if rep.is_multiple_of(2) {
        [true, false]
    } else {
        [false, true]
    }
}

/// The median over reps of `with / without - 1` (each rep's two runs are
/// back to back, so the host's slow drift cancels).
fn paired_overhead(with: impl Iterator<Item = f64>, without: impl Iterator<Item = f64>) -> f64 {
    median(with.zip(without).map(|(x, y)| x / y - 1.0).collect())
}

/// A reader of the dashboard's push stream on its own thread, as an open
/// page would be: it takes every byte the server sends.
struct PushReader {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(u64, u64)>,
}

impl PushReader {
    fn connect(addr: &str) -> BenchResult<PushReader> {
        let mut stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            stream,
            "GET /api/events?topics=status,graph,tasks HTTP/1.1\r\nHost: {addr}\r\n\
             Accept: text/event-stream\r\n\r\n"
        )?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head)?;
        if &head[9..12] != b"200" {
            return Err(format!(
                "the push stream answered {:?}",
                String::from_utf8_lossy(&head)
            )
            .into());
        }
        // Short reads from here on, so that `finish` is heard quickly.
        stream.set_read_timeout(Some(Duration::from_millis(200)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut bytes, mut events) = (0u64, 0u64);
            let mut buf = vec![0u8; 1 << 16];
            while !stopping.load(Ordering::Relaxed) {
                match stream.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        bytes += n as u64;
                        // Events start with their name (approximate across
                        // buffer boundaries: evidence, not a figure).
                        events += buf[..n].windows(7).filter(|w| *w == b"event: ").count() as u64;
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => break,
                }
            }
            (bytes, events)
        });
        Ok(PushReader { stop, thread })
    }

    /// Stops reading; returns (bytes, events) received.
    fn finish(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or((0, 0))
    }
}

/// CPU time (user + system) this process has used so far, in seconds, from
/// `/proc/self/stat` (fields 14 and 15, in the kernel's 100 Hz clock ticks);
/// NaN where that file cannot be read.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // The command name (field 2) may hold spaces; the fields after it do not.
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return f64::NAN;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3, so utime (14) and stime (15) are at 11 and 12.
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => (user + system) / 100.0,
        _ => f64::NAN,
    }
}

/// One run's wall time and the process's CPU time during it, in seconds.
#[derive(Clone, Copy)]
struct Timing {
    wall: f64,
    cpu: f64,
}

fn run(client: &Client, graph: &Graph, root: &Key, expected: u64) -> BenchResult<Timing> {
    let (t, cpu) = (Instant::now(), cpu_seconds());
    let out = client.compute_graph(graph, std::slice::from_ref(root))?;
    let timing = Timing {
        wall: t.elapsed().as_secs_f64(),
        cpu: cpu_seconds() - cpu,
    };
    let got = *out[0].downcast_ref::<u64>()?;
    if got != expected {
        return Err(format!("wrong result: {got}, expected {expected}").into());
    }
    Ok(timing)
}

/// Drives the tasks through a bare `SchedulerState` (one worker finishing
/// each task at once), with or without the dashboard plugin; checks every
/// task ran once and the root ended in memory.
fn state_machine(deps: &[(Key, Vec<Key>)], root: &Key, dashboard: bool) -> BenchResult<f64> {
    use dask_distributed::scheduler::state::{
        Action, Event, Priority, SchedulerState, Status, TaskSpec,
    };
    let specs: Vec<TaskSpec> = deps
        .iter()
        .enumerate()
        .map(|(i, (key, d))| TaskSpec {
            key: key.clone(),
            dependencies: d.clone(),
            run_spec: Default::default(),
            priority: Priority {
                order: i as u64,
                ..Default::default()
            },
            retries: 0,
            restrictions: None,
        })
        .collect();
    let t = Instant::now();
    let mut state = SchedulerState::new();
    let board = dashboard.then(dask_distributed::dashboard::Dashboard::new);
    if let Some(b) = &board {
        state.add_plugin(b.plugin());
    }
    let bug = |e: dask_distributed::scheduler::state::InvariantError| e.to_string();
    let mut actions = state
        .handle(Event::AddWorker {
            worker: 1,
            nthreads: 8,
        })
        .map_err(bug)?;
    actions.extend(
        state
            .handle(Event::UpdateGraph {
                client: 1,
                tasks: specs,
                wanted: vec![root.clone()],
            })
            .map_err(bug)?,
    );
    let mut computed = 0;
    while let Some(action) = actions.pop() {
        if let Action::Compute { worker, key, .. } = action {
            computed += 1;
            actions.extend(
                state
                    .handle(Event::TaskFinished {
                        worker,
                        key,
                        nbytes: 8,
                    })
                    .map_err(bug)?,
            );
        }
    }
    let secs = t.elapsed().as_secs_f64();
    if computed != deps.len() || state.task(root).map(|t| t.status) != Some(Status::Memory) {
        return Err(format!("state machine ran {computed} of {} tasks", deps.len()).into());
    }
    if let Some(b) = board {
        let done = b.snapshot().tasks_done;
        if done != deps.len() as u64 {
            return Err(format!("the dashboard counted {done} of {} tasks", deps.len()).into());
        }
    }
    Ok(secs)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if let Err(e) = bench() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn bench() -> BenchResult<()> {
    let c = parse()?;
    let (graph, root, expected, deps) = tree(c.tasks);
    let per_task = |s: f64| s * 1e6 / graph.len() as f64;
    println!(
        "dashboard overhead: {} tasks (tree reduction), {} worker(s) x {} thread(s), {} reps{}",
        graph.len(),
        c.workers,
        c.threads,
        c.reps,
        if cfg!(debug_assertions) {
            " [debug build: figures are not representative]"
        } else {
            ""
        }
    );
    if !c.state_only {
        cluster_figures(&c, &graph, &root, expected)?;
    }
    state_figures(&c, &deps, &root, per_task)
}

/// One timed run on a fresh cluster (with the dashboard or without): a
/// warm-up run, then the timed one, read by a push client when the cluster
/// has a dashboard (and `--no-push` is not given). Returns the timing and
/// what the push client received (bytes, events).
fn fresh_run(
    c: &Config,
    dashboard: bool,
    graph: &Graph,
    root: &Key,
    expected: u64,
) -> BenchResult<(Timing, Option<(u64, u64)>)> {
    let client = start(c, dashboard)?;
    let address = client.cluster().and_then(|cl| cl.dashboard_address());
    if dashboard && address.is_none() {
        return Err("the cluster with a dashboard has no dashboard address".into());
    }
    run(&client, graph, root, expected)?;
    let reader = match address {
        Some(address) if !c.no_push => Some(PushReader::connect(&address)?),
        _ => None,
    };
    let timing = run(&client, graph, root, expected)?;
    let pushed = reader.map(PushReader::finish);
    if pushed.is_some_and(|(_, events)| events == 0) {
        return Err("the push stream sent nothing during the run".into());
    }
    // Both runs' tasks were recorded, up to the ring's capacity.
    let recorded = client.get_task_stream()?.len();
    if recorded != (2 * graph.len()).min(task_stream_capacity(c, dashboard)) {
        return Err(format!("the task stream holds {recorded} records for two runs").into());
    }
    client.shutdown();
    Ok((timing, pushed))
}

fn cluster_figures(c: &Config, graph: &Graph, root: &Key, expected: u64) -> BenchResult<()> {
    // Each run on its own fresh cluster, the two kinds alternating (with,
    // without, without, with, ...): two long-lived clusters measured apart
    // differ by several percent even when both have no dashboard (`--null`).
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let mut pushed: Option<(u64, u64)> = None;
    for rep in 0..c.reps {
        for with in order(rep) {
            let (timing, got) = fresh_run(c, with && !c.null, graph, root, expected)?;
            if let Some((bytes, events)) = got {
                let (b0, e0) = pushed.unwrap_or((0, 0));
                pushed = Some((b0 + bytes, e0 + events));
            }
            if with {
                a.push(timing);
            } else {
                b.push(timing);
            }
        }
    }
    let runs = |v: &[Timing]| {
        v.iter()
            .map(|t| format!("{:.3}", t.wall))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (runs_a, runs_b) = (runs(&a), runs(&b));
    // Medians taken apart do not cancel the host's slow drift; paired ones do.
    let paired = |f: fn(&Timing) -> f64| paired_overhead(a.iter().map(f), b.iter().map(f));
    let (paired_wall, paired_cpu) = (paired(|t| t.wall), paired(|t| t.cpu));
    let cpu = |v: &[Timing]| median(v.iter().map(|t| t.cpu).collect());
    let (cpu_a, cpu_b) = (cpu(&a), cpu(&b));
    let wall = |v: &[Timing]| median(v.iter().map(|t| t.wall).collect());
    let (a, b) = (wall(&a), wall(&b));
    let per_task = |s: f64| s * 1e6 / graph.len() as f64;
    println!(
        "without dashboard and task stream: {:.3} s median ({:.2} us/task), CPU {:.3} s; runs: {runs_b}",
        b,
        per_task(b),
        cpu_b
    );
    println!(
        "{}{}{}: {:.3} s median ({:.2} us/task), CPU {:.3} s; runs: {runs_a}",
        if c.null {
            "again without (--null)"
        } else {
            "with dashboard"
        },
        if c.no_task_stream || c.null {
            ""
        } else {
            ", task stream"
        },
        if pushed.is_some() {
            " and a push client"
        } else {
            ""
        },
        a,
        per_task(a),
        cpu_a
    );
    if let Some((bytes, events)) = pushed {
        println!(
            "push client received {events} events, {:.1} MiB",
            bytes as f64 / (1 << 20) as f64
        );
    }
    println!(
        "CPU overhead:      {:+.1} % (median CPU seconds per run)",
        100.0 * (cpu_a - cpu_b) / cpu_b
    );
    println!(
        "paired overhead:   wall {:+.1} %, CPU {:+.1} % (median of each rep's with/without ratio)",
        100.0 * paired_wall,
        100.0 * paired_cpu
    );
    println!(
        "wall overhead:     {:+.1} % (target: under 5 %)",
        100.0 * (a - b) / b
    );
    Ok(())
}

fn state_figures(
    c: &Config,
    deps: &[(Key, Vec<Key>)],
    root: &Key,
    per_task: impl Fn(f64) -> f64,
) -> BenchResult<()> {
    state_machine(deps, root, true)?;
    state_machine(deps, root, false)?;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for rep in 0..c.reps {
        for with in order(rep) {
            let secs = state_machine(deps, root, with)?;
            if with {
                a.push(secs);
            } else {
                b.push(secs);
            }
        }
    }
    let paired = paired_overhead(a.iter().copied(), b.iter().copied());
    let fastest = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let (fast_a, fast_b) = (fastest(&a), fastest(&b));
    let (a, b) = (median(a), median(b));
    println!("scheduler state machine alone (no sockets):");
    println!(
        "  without plugin: {:.3} s median ({:.2} us/task), fastest {:.3} s",
        b,
        per_task(b),
        fast_b
    );
    println!(
        "  with dashboard: {:.3} s median ({:.2} us/task), fastest {:.3} s",
        a,
        per_task(a),
        fast_a
    );
    println!(
        "  overhead:       {:+.1} % (medians), paired {:+.1} %, fastest runs {:+.1} %",
        100.0 * (a - b) / b,
        100.0 * paired,
        100.0 * (fast_a - fast_b) / fast_b
    );
    Ok(())
}
