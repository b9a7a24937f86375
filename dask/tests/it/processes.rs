//! A scheduler and two workers started with the `dask` binary as separate
//! processes, and a client in this process using them over TCP.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use dask::core::{Arg, Graph, Key, Scheduler, Task, Value};
use dask::distributed::Client;

/// Set (to the scheduler's address) for the helper processes of this binary.
pub(crate) const SCHEDULER_ENV: &str = "DASK_RS_IT_SCHEDULER";

/// Runs this test binary's ignored helper test `name` (`module::test`) with
/// the scheduler's address in [`SCHEDULER_ENV`] and the extra `envs`.
pub(crate) fn helper(name: &str, addr: &str, envs: &[(&str, String)]) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SCHEDULER_ENV, addr)
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// The first line of `child`'s stdout containing `marker`, from it on. The
/// rest of its output is read (and dropped) by a thread, so the helper never
/// writes into a closed pipe.
pub(crate) fn line_with(child: &mut Child, marker: &str) -> String {
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines().map_while(|l| l.ok());
    // libtest may print "test ... " on the same line first.
    let found = lines
        .by_ref()
        .find_map(|l| l.find(marker).map(|i| l[i..].to_owned()))
        .unwrap_or_else(|| panic!("no {marker:?} line from the helper process"));
    std::thread::spawn(move || lines.for_each(drop));
    found
}

/// A worker process that links this binary's registered ops (the `dask`
/// binary's workers lack the tests' own): [`test_binary_worker`], started and
/// connected to `addr`.
pub(crate) fn worker_of_this_binary(addr: &str) -> Child {
    let mut worker = helper("processes::test_binary_worker", addr, &[]);
    line_with(&mut worker, "worker at ");
    worker
}

/// Not a test: the worker process of [`worker_of_this_binary`] (this binary
/// run again with the scheduler's address in [`SCHEDULER_ENV`]). Run alone,
/// without that variable, it returns at once.
#[test]
#[ignore = "helper process: a worker of the tests that start this binary again"]
fn test_binary_worker() {
    let Ok(addr) = std::env::var(SCHEDULER_ENV) else {
        return;
    };
    dask::distributed::process::run_worker(&addr, 1).expect("the worker process runs");
}

/// Kills its processes when dropped, so no test leaves one behind.
pub(crate) struct Procs(pub(crate) Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts `dask ARGS` and returns it with the address it prints after `prefix`.
pub(crate) fn spawn(args: &[&str], prefix: &str) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dask"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the dask binary");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the address line");
    let addr = line
        .trim()
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("unexpected output {line:?}"))
        .to_owned();
    (child, addr)
}

fn inc(x: i64) -> i64 {
    x + 1
}
// Registered in this test binary only: the `dask` worker processes lack it.
dask::core::register_op!(inc);

#[test]
fn scheduler_and_workers_as_processes() {
    let (scheduler, addr) = spawn(
        &["scheduler", "--port", "0", "--dashboard-port", "0"],
        "scheduler at ",
    );
    let mut procs = Procs(vec![scheduler]);
    for limit in ["4GB", "3.5GiB"] {
        let args = ["worker", &addr, "--nthreads", "1", "--memory-limit", limit];
        let (worker, _) = spawn(&args, "worker at ");
        procs.0.push(worker);
    }
    let client = Client::connect(&addr).unwrap();

    // Literal data and aliases run on the worker processes and move between them.
    let mut g = Graph::new();
    for i in 0..50u64 {
        g.insert_data(Key::new("x", [i]), Value::new(vec![i as i64; 1000]));
        g.insert(
            Key::new("y", [i]),
            Task::alias(Key::new("x", [(i + 1) % 50])),
        );
    }
    let outputs: Vec<Key> = (0..50).map(|i| Key::new("y", [i])).collect();
    let expected = dask::SyncScheduler::new().compute(&g, &outputs).unwrap();
    let got = client.compute(&g, &outputs).unwrap();
    for (e, v) in expected.iter().zip(&got) {
        assert_eq!(
            e.downcast_ref::<Vec<i64>>().unwrap(),
            v.downcast_ref::<Vec<i64>>().unwrap()
        );
    }

    // An op the worker binary does not have: a typed failure naming it, and the
    // cluster keeps serving.
    let mut g = Graph::new();
    g.insert(
        Key::named("inc"),
        Task::new(dask::core::op::fn_op(inc), vec![Arg::value(1i64)]),
    );
    let err = client.compute(&g, &[Key::named("inc")]).unwrap_err();
    assert!(err.to_string().contains("no op is registered"), "{err}");
    assert_eq!(err.failed_key(), Some(&Key::named("inc")));
    let again = client.compute(&g.clone(), &[]);
    assert!(matches!(again, Err(dask::Error::NoOutputs)));
    drop(procs);
}

/// 10 layers of 1000 alias tasks over 1000 data tasks: each output is some
/// layer-0 vector, reached through a chain of transfers between processes.
fn layered_graph(seed: u64) -> (Graph, Vec<Key>) {
    let n = 1000u64;
    let layer = |k: u64| format!("layer{seed}-{k}");
    let mut g = Graph::new();
    for i in 0..n {
        g.insert_data(
            Key::new(layer(0).as_str(), [i]),
            Value::new(vec![i as i64; 64]),
        );
    }
    for k in 1..=10u64 {
        for i in 0..n {
            let src = Key::new(layer(k - 1).as_str(), [(i * 7 + k) % n]);
            g.insert(Key::new(layer(k).as_str(), [i]), Task::alias(src));
        }
    }
    let outputs = (0..n).map(|i| Key::new(layer(10).as_str(), [i])).collect();
    (g, outputs)
}

#[test]
fn sigkill_a_worker_process_mid_graph() {
    for run in 0..3u64 {
        let (scheduler, addr) = spawn(
            &["scheduler", "--port", "0", "--dashboard-port", "0"],
            "scheduler at ",
        );
        let mut procs = Procs(vec![scheduler]);
        for _ in 0..3 {
            let (worker, _) = spawn(&["worker", &addr, "--nthreads", "1"], "worker at ");
            procs.0.push(worker);
        }
        let client = Client::connect(&addr).unwrap();
        let (g, outputs) = layered_graph(run);
        let expected = dask::SyncScheduler::new().compute(&g, &outputs).unwrap();
        let got = std::thread::scope(|s| {
            let victim = &mut procs.0[1 + run as usize % 3];
            let killer = s.spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(40 + 30 * run));
                victim.kill().expect("SIGKILL the worker"); // Child::kill is SIGKILL on Unix
                let _ = victim.wait();
            });
            let got = client.compute(&g, &outputs);
            killer.join().unwrap();
            got
        })
        .unwrap_or_else(|e| panic!("run {run}: {e}"));
        for (e, v) in expected.iter().zip(&got) {
            assert_eq!(
                e.downcast_ref::<Vec<i64>>().unwrap(),
                v.downcast_ref::<Vec<i64>>().unwrap(),
                "run {run}"
            );
        }
    }
}

/// A scheduler and two workers, all `dask` processes, and a client here.
pub(crate) fn cluster_of_processes(workers: usize) -> (Procs, Client) {
    let (scheduler, addr) = spawn(&["scheduler", "--port", "0"], "scheduler at ");
    let mut procs = Procs(vec![scheduler]);
    for _ in 0..workers {
        let (worker, _) = spawn(&["worker", &addr, "--nthreads", "1"], "worker at ");
        procs.0.push(worker);
    }
    let client = Client::connect(&addr).unwrap();
    (procs, client)
}

/// The seed on worker processes: every chunk task is a registered op the
/// workers rebuild, every block crosses processes by its codec. Each result
/// is compared with the sync scheduler in this process.
#[test]
fn array_seed_on_worker_processes() {
    use dask::array::{random, Collection, Reduce};

    let (procs, client) = cluster_of_processes(2);
    let sync = dask::SyncScheduler::new();
    let x = random::random(&[600, 600], 100, 42).unwrap();
    assert_eq!(x.shape(), &[600, 600]);

    // (x + x.T).sum(): the same tree of partial sums on both schedulers, so
    // the same floating-point result.
    let total = (&x + &x.t()).unwrap().sum(None).unwrap();
    let expected = total.compute_scalar_with(&sync).unwrap();
    assert_eq!(total.compute_scalar_with(&client).unwrap(), expected);

    // A mean over an axis, with partials (sums and counts) moving between
    // workers through their codec.
    let means = x.mean(Reduce::axis(0).split_every(2)).unwrap();
    assert_eq!(
        means.compute_with(&client).unwrap(),
        means.compute_with(&sync).unwrap()
    );

    // A matmul: blocks from both workers meet in one task.
    let prod = x.matmul(&x.t()).unwrap();
    let (got, want) = (
        prod.compute_with(&client).unwrap(),
        prod.compute_with(&sync).unwrap(),
    );
    assert_eq!(got.shape(), want.shape());
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() <= 1e-9 * w.abs().max(1.0), "{g} != {w}");
    }
    drop(procs);
}

/// A `map_blocks` closure cannot be rebuilt by a worker process: the client
/// refuses the graph before submitting anything, naming the closure's op and
/// how to register ops, and the cluster keeps serving.
#[test]
fn array_closure_is_refused_for_worker_processes() {
    use dask::array::{ones, Collection};

    let (procs, client) = cluster_of_processes(1);
    let x = ones::<f64>(&[40, 40], 20).unwrap();
    let y = x.map_blocks(|b| b * 3.0);
    // Computed together with a store whose (registered) tasks write files:
    // had any task been sent, the worker would write them.
    let dir = std::env::temp_dir().join(format!("dask-refused-{}", std::process::id()));
    let store = x.to_npy_dir(&dir).unwrap();
    let err = dask::compute_with((&store, &y), &client).unwrap_err();
    match &err {
        dask::Error::OpNotRegistered { op, .. } => assert!(op.contains("map_blocks"), "{op}"),
        other => panic!("expected OpNotRegistered, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("register_op"), "{text}");
    // Registered ops still run, and the result matches the sync scheduler.
    let s = (&x * 3.0).unwrap().sum(None).unwrap();
    assert_eq!(
        s.compute_scalar_with(&client).unwrap(),
        s.compute_scalar_with(&dask::SyncScheduler::new()).unwrap()
    );
    let written: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(
        written.is_empty(),
        "tasks of a refused graph ran: {written:?}"
    );
    // The same store alone runs on the worker process and writes every block.
    assert!(store.compute_with(&client).unwrap() > 0);
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        x.npartitions() + 1
    );
    std::fs::remove_dir_all(&dir).unwrap();
    drop(procs);
}

/// Runs `dask ARGS` to its end (bounded) and returns its status and stderr.
fn run_to_end(args: &[&str]) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dask"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the dask binary");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).ok();
        text
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the worker") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`dask {args:?}` did not exit");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    (status, reader.join().unwrap())
}

#[test]
fn worker_memory_limit_flag_is_checked_and_enforced() {
    let (scheduler, addr) = spawn(&["scheduler", "--port", "0"], "scheduler at ");
    let _procs = Procs(vec![scheduler]);
    // A limit that is not a size: refused with the way to write one.
    let (status, stderr) = run_to_end(&["worker", &addr, "--memory-limit", "12 parsecs"]);
    assert!(!status.success());
    assert!(stderr.contains("cannot read \"12 parsecs\""), "{stderr}");
    // Thresholds out of order: refused, naming the rule.
    let (status, stderr) = run_to_end(&[
        "worker",
        &addr,
        "--memory-limit",
        "4GB",
        "--memory-pause-fraction",
        "0.5",
    ]);
    assert!(!status.success());
    assert!(stderr.contains("target <= spill <= pause"), "{stderr}");
    // A limit below what the process itself needs: the worker stops above its
    // terminate threshold (95%) and says why.
    let (status, stderr) = run_to_end(&["worker", &addr, "--memory-limit", "1MB", "--no-nanny"]);
    assert_eq!(
        status.code(),
        Some(dask::distributed::process::EXIT_MEMORY_EXCEEDED)
    );
    assert!(stderr.contains("terminate threshold"), "{stderr}");
}

#[test]
fn a_nanny_restarts_a_worker_over_its_memory_limit_and_takes_it_down_with_it() {
    let (scheduler, addr) = spawn(&["scheduler", "--port", "0"], "scheduler at ");
    let _procs = Procs(vec![scheduler]);
    let mut nanny = Command::new(env!("CARGO_BIN_EXE_dask"))
        .args(["worker", &addr, "--memory-limit", "1MB"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the dask binary");
    let stderr = nanny.stderr.take().expect("piped stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut restarts = 0;
        let mut text = String::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains("nanny:") && line.contains("restarting") {
                restarts += 1;
                let _ = tx.send(restarts);
            }
            text.push_str(&line);
            text.push('\n');
        }
        text // EOF: the nanny and every worker it started have exited
    });
    // Two restarts in a row: the nanny keeps the worker coming back.
    for want in 1..=2 {
        let got = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("restart {want} never came"));
        assert_eq!(got, want);
    }
    nanny.kill().expect("SIGKILL the nanny");
    let _ = nanny.wait();
    // The worker process shares the stderr pipe: the reader only ends once
    // it exited too (it watches its stdin, the nanny's pipe).
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(reader.join());
    });
    let text = done_rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("a worker outlived its nanny")
        .unwrap();
    assert!(text.contains("terminate threshold"), "{text}");
}

/// The task stream and a performance report with worker processes: every
/// task of the graph recorded once, on a worker process of the cluster, with
/// the timings its process measured.
#[test]
fn task_stream_and_report_on_worker_processes() {
    let (procs, client) = cluster_of_processes(2);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while client.workers().unwrap().len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "workers never registered"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let workers: Vec<String> = client
        .workers()
        .unwrap()
        .into_iter()
        .map(|w| w.addr)
        .collect();
    let mut g = Graph::new();
    for i in 0..40u64 {
        g.insert_data(Key::new("src", [i]), Value::new(vec![i as i64; 100]));
        g.insert(
            Key::new("moved", [i]),
            Task::alias(Key::new("src", [(i + 3) % 40])),
        );
    }
    let outputs: Vec<Key> = (0..40).map(|i| Key::new("moved", [i])).collect();
    let expected = dask::SyncScheduler::new().compute(&g, &outputs).unwrap();
    let dir = std::env::temp_dir().join(format!("dask-rs-proc-report-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("report.html");
    let got = client
        .performance_report(&path, || client.compute(&g, &outputs))
        .unwrap()
        .unwrap();
    for (e, v) in expected.iter().zip(&got) {
        assert_eq!(
            e.downcast_ref::<Vec<i64>>().unwrap(),
            v.downcast_ref::<Vec<i64>>().unwrap()
        );
    }
    let records = client.get_task_stream().unwrap();
    let mut keys: Vec<Key> = records.iter().map(|r| r.key.clone()).collect();
    keys.sort();
    let mut want: Vec<Key> = g.keys().cloned().collect();
    want.sort();
    assert_eq!(keys, want, "one record per task");
    for r in &records {
        assert!(
            workers.contains(&r.worker),
            "{} not in {workers:?}",
            r.worker
        );
        assert_eq!(r.thread, 0, "one thread per worker");
        assert!(r.start <= r.stop);
    }
    let html = std::fs::read_to_string(&path).unwrap();
    for prefix in ["src", "moved"] {
        assert!(
            html.contains(&format!("data-prefix=\"{prefix}\"")),
            "{prefix}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
    drop(procs);
}
