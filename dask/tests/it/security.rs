//! Security and failure handling with the `dask` binary's processes: token
//! and TLS flags, a task that aborts its worker process (under its nanny)
//! until it is declared suspicious, and a scheduler process killed under a
//! client and a worker.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use dask::core::{Graph, Key, Scheduler, Task, Value};
use dask::distributed::process::abort_process;
use dask::distributed::{Client, Error, Security};

/// A `dask` process; killed (with its nanny's children, who watch their
/// stdin) when dropped. Its stderr lines arrive on `stderr`.
struct Proc {
    child: Child,
    stderr: mpsc::Receiver<String>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Waits (at most 60 s) for a stderr line containing `text`.
    fn stderr_line(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(_) => panic!("no stderr line containing {text:?}"),
            }
        }
    }

    /// Waits (at most 60 s) for the process to exit.
    fn exit_code(&mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "the process did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Starts `dask ARGS` (with `envs`) and returns it with the address it
/// prints after `prefix` (`None`: do not wait for one).
fn spawn(args: &[&str], envs: &[(&str, &str)], prefix: Option<&str>) -> (Proc, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dask"))
        .args(args)
        .env_remove("DASK_TOKEN")
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the dask binary");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Stdout is read to its end: a worker restarted by its nanny prints
    // its address again, and must not meet a closed pipe.
    let stdout = child.stdout.take().expect("piped stdout");
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = lines_tx.send(line);
        }
    });
    let addr = match prefix {
        Some(prefix) => {
            let line = lines
                .recv_timeout(Duration::from_secs(60))
                .expect("the address line");
            line.trim()
                .strip_prefix(prefix)
                .unwrap_or_else(|| panic!("unexpected output {line:?}"))
                .to_owned()
        }
        None => String::new(),
    };
    (Proc { child, stderr: rx }, addr)
}

/// Literal data moved between worker processes, checked against the sync
/// scheduler.
fn check(client: &Client, seed: i64) {
    let mut g = Graph::new();
    for i in 0..20i64 {
        g.insert_data(Key::new("x", [i as u64]), Value::new(vec![seed + i; 100]));
        g.insert(
            Key::new("y", [i as u64]),
            Task::alias(Key::new("x", [((i + 1) % 20) as u64])),
        );
    }
    let outputs: Vec<Key> = (0..20).map(|i| Key::new("y", [i])).collect();
    let want = dask::SyncScheduler::new().compute(&g, &outputs).unwrap();
    let got = client.compute(&g, &outputs).unwrap();
    for (w, v) in want.iter().zip(&got) {
        assert_eq!(
            w.downcast_ref::<Vec<i64>>().unwrap(),
            v.downcast_ref::<Vec<i64>>().unwrap()
        );
    }
}

const TOKEN: &str = "process-secret";

#[test]
fn token_from_flag_and_environment_on_processes() {
    // The scheduler reads DASK_TOKEN, the worker gets --token.
    let (scheduler, addr) = spawn(
        &["scheduler", "--port", "0", "--no-dashboard"],
        &[("DASK_TOKEN", TOKEN)],
        Some("scheduler at "),
    );
    let (_worker, _) = spawn(
        &["worker", &addr, "--nthreads", "1", "--token", TOKEN],
        &[],
        Some("worker at "),
    );
    let client = Client::connect_with(&addr, Security::new().with_token(TOKEN).unwrap()).unwrap();
    check(&client, 1);

    // A client without the token is refused, and the scheduler logs it.
    let err = Client::connect(&addr).unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
    let line = scheduler.stderr_line("requires a token");
    assert!(line.contains("refused a client at 127.0.0.1:"), "{line}");

    // A worker with a wrong token exits with the reason.
    let (mut stranger, _) = spawn(
        &["worker", &addr, "--no-nanny", "--token", "guess"],
        &[],
        None,
    );
    let line = stranger.stderr_line("refused this connection");
    assert!(line.contains("not the scheduler's"), "{line}");
    assert_eq!(stranger.exit_code(), Some(1));
    check(&client, 2);
}

#[test]
fn tls_flags_on_processes() {
    let dir = std::env::temp_dir().join(format!("dask-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dask_testing::pki::Ca::new("dask-rs process test CA");
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let ca_file = write("ca.pem", &ca.pem);
    let (cert, key) = ca.member("node");
    let (cert_file, key_file) = (write("node.pem", &cert), write("node-key.pem", &key));
    let tls = [
        "--tls-ca-file",
        ca_file.as_str(),
        "--tls-cert",
        cert_file.as_str(),
        "--tls-key",
        key_file.as_str(),
    ];
    let mut args = vec!["scheduler", "--port", "0", "--no-dashboard"];
    args.extend(tls);
    let (_scheduler, addr) = spawn(&args, &[], Some("scheduler at "));
    let mut args = vec!["worker", addr.as_str(), "--nthreads", "1"];
    args.extend(tls);
    let (_w1, _) = spawn(&args, &[], Some("worker at "));
    let (_w2, _) = spawn(&args, &[], Some("worker at "));
    let (cert, key) = ca.member("client");
    let security = Security::new()
        .with_tls_pem(ca.pem.as_bytes(), cert.as_bytes(), key.as_bytes())
        .unwrap();
    let client = Client::connect_with(&addr, security).unwrap();
    check(&client, 3);
    assert_eq!(client.workers().unwrap().len(), 2);

    // Half the TLS flags: refused with the missing ones named.
    let (mut half, _) = spawn(
        &["worker", &addr, "--no-nanny", "--tls-ca-file", &ca_file],
        &[],
        None,
    );
    let line = half.stderr_line("TLS needs");
    assert!(
        line.contains("--tls-cert") && line.contains("--tls-key"),
        "{line}"
    );
    assert_eq!(half.exit_code(), Some(1));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_task_that_aborts_its_worker_becomes_suspicious() {
    let (_scheduler, addr) = spawn(
        &[
            "scheduler",
            "--port",
            "0",
            "--no-dashboard",
            "--allowed-failures",
            "1",
        ],
        &[],
        Some("scheduler at "),
    );
    // Workers under their nannies: each abort is followed by a restart.
    let (_w1, _) = spawn(
        &["worker", &addr, "--nthreads", "1"],
        &[],
        Some("worker at "),
    );
    let (_w2, _) = spawn(
        &["worker", &addr, "--nthreads", "1"],
        &[],
        Some("worker at "),
    );
    let client = Client::connect(&addr).unwrap();
    let future = client.submit(abort_process, (7u64,)).unwrap();
    match future.result_timeout(Duration::from_secs(120)) {
        Err(Error::SuspiciousTask {
            key,
            deaths,
            allowed,
        }) => {
            assert_eq!(&key, future.key());
            assert_eq!((deaths, allowed), (2, 1));
        }
        other => panic!("expected a suspicious task, got {other:?}"),
    }
    // Nannies restart the workers; the cluster computes correctly.
    let deadline = Instant::now() + Duration::from_secs(60);
    while client.workers().unwrap().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the nannies did not restart the workers"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    check(&client, 4);
    // Through the Scheduler trait, the failure names the key.
    let mut g = Graph::new();
    g.insert(
        Key::named("boom"),
        Task::new(
            dask::core::op::fn_op(abort_process),
            vec![dask::core::Arg::value(1u64)],
        ),
    );
    let err = client.compute(&g, &[Key::named("boom")]).unwrap_err();
    assert_eq!(err.failed_key(), Some(&Key::named("boom")));
    assert!(err.to_string().contains("suspicious"), "{err}");
}

#[test]
fn a_killed_scheduler_fails_clients_and_stops_workers() {
    let (mut scheduler, addr) = spawn(
        &["scheduler", "--port", "0", "--no-dashboard"],
        &[],
        Some("scheduler at "),
    );
    let (mut worker, _) = spawn(
        &["worker", &addr, "--nthreads", "1"],
        &[],
        Some("worker at "),
    );
    let client = Client::connect(&addr).unwrap();
    check(&client, 5);
    scheduler.child.kill().expect("SIGKILL the scheduler");
    let _ = scheduler.child.wait();
    // Every call now fails with the same clear error, and none hangs.
    let err = client.workers().unwrap_err();
    assert!(matches!(err, Error::SchedulerLost { .. }), "{err:?}");
    let mut g = Graph::new();
    g.insert_data(Key::named("z"), Value::new(1i64));
    let err = client.compute_graph(&g, &[Key::named("z")]).unwrap_err();
    assert!(matches!(err, Error::SchedulerLost { .. }), "{err:?}");
    // The worker says so and exits; its nanny exits with it.
    worker.stderr_line("lost the connection to the scheduler");
    assert_eq!(worker.exit_code(), Some(0));
}
