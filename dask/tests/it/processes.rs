//! A scheduler and two workers started with the `dask` binary as separate
//! processes, and a client in this process using them over TCP.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use dask::core::{Arg, Graph, Key, Scheduler, Task, Value};
use dask::distributed::Client;

/// Kills its processes when dropped, so no test leaves one behind.
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts `dask ARGS` and returns it with the address it prints after `prefix`.
fn spawn(args: &[&str], prefix: &str) -> (Child, String) {
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
    for _ in 0..2 {
        let (worker, _) = spawn(&["worker", &addr, "--nthreads", "1"], "worker at ");
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
