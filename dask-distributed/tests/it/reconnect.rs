//! Losing the scheduler connection: a client cut off (by a TCP proxy between
//! it and the scheduler) reconnects and keeps its futures within the grace
//! period; a cut longer than it, a scheduler restarted at the same address,
//! and a hung (SIGSTOPped) scheduler process give typed errors, not hangs.
//! Results are checked against the sync scheduler.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use dask_core::{delayed, Collection};
use dask_distributed::scheduler::server;
use dask_distributed::worker::{self, WorkerOptions};
use dask_distributed::{Client, ClientOptions, Error, Future, LocalCluster};
use dask_sync_scheduler::SyncScheduler;
use dask_testing::within;
use tokio::net::{TcpListener, TcpStream};

const PATIENCE: Duration = Duration::from_secs(60);

fn double_plus_one(x: i64) -> i64 {
    2 * x + 1
}
dask_core::register_op!(double_plus_one);

/// Gates opened by the tests (tasks of one test wait on its own gate).
static OPEN_GATES: LazyLock<Mutex<HashSet<u64>>> = LazyLock::new(Default::default);
static NEXT_GATE: AtomicU64 = AtomicU64::new(1);

fn new_gate() -> u64 {
    NEXT_GATE.fetch_add(1, Ordering::Relaxed)
}

fn open_gate(gate: u64) {
    OPEN_GATES.lock().unwrap().insert(gate);
}

/// `double_plus_one(x)` once `gate` is open (workers run in this process).
fn gated(x: i64, gate: u64) -> i64 {
    let deadline = std::time::Instant::now() + PATIENCE;
    while !OPEN_GATES.lock().unwrap().contains(&gate) {
        assert!(
            std::time::Instant::now() < deadline,
            "gate {gate} never opened"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    double_plus_one(x)
}
dask_core::register_op!(gated);

/// Polls `cond` until it holds; panics after `PATIENCE` (a bound against
/// hangs, not a timing assertion).
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The sync scheduler's answers for `double_plus_one` (and `gated`) of `xs`.
fn oracle(xs: impl Iterator<Item = i64>) -> Vec<i64> {
    xs.map(|x| {
        delayed(double_plus_one)
            .call((x,))
            .compute_with(&SyncScheduler::new())
            .unwrap()
    })
    .collect()
}

/// A TCP proxy between clients and a scheduler whose connections a test
/// can sever, and which can refuse new ones (an outage).
struct Proxy {
    addr: String,
    links: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    refuse: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    rt: tokio::runtime::Runtime,
}

impl Proxy {
    fn start(upstream: &str) -> Proxy {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let links: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let refuse = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (l, r, a, up) = (
            links.clone(),
            refuse.clone(),
            accepted.clone(),
            upstream.to_owned(),
        );
        rt.spawn(async move {
            while let Ok((mut down, _)) = listener.accept().await {
                if r.load(Ordering::SeqCst) {
                    continue; // dropped: the connection closes at once
                }
                a.fetch_add(1, Ordering::SeqCst);
                let up = up.clone();
                let link = tokio::spawn(async move {
                    if let Ok(mut upstream) = TcpStream::connect(&up).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut upstream).await;
                    }
                });
                l.lock().unwrap().push(link.abort_handle());
            }
        });
        Proxy {
            addr,
            links,
            refuse,
            accepted,
            rt,
        }
    }

    /// Cuts every connection through the proxy (both sides see it close).
    fn sever(&self) {
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    /// Refuses (closes at once) new connections while `on`.
    fn refuse(&self, on: bool) {
        self.refuse.store(on, Ordering::SeqCst);
    }

    /// Connections forwarded so far.
    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.sever();
        let _ = &self.rt;
    }
}

fn patient_client(addr: &str) -> Client {
    Client::connect_with_options(
        addr,
        ClientOptions {
            reconnect_timeout: PATIENCE,
            ..ClientOptions::default()
        },
    )
    .unwrap()
}

#[test]
fn a_client_cut_off_and_back_within_the_grace_period_keeps_its_futures() {
    within(PATIENCE * 2, || {
        let cluster = LocalCluster::builder()
            .n_workers(2)
            .threads_per_worker(2)
            .dashboard_port(0)
            .start()
            .unwrap();
        let proxy = Proxy::start(&cluster.scheduler_addr());
        let client = patient_client(&proxy.addr);
        // Finished before the cut.
        let done: Vec<Future<i64>> = (0..20)
            .map(|x| client.submit(double_plus_one, (x,)).unwrap())
            .collect();
        assert_eq!(client.gather(&done).unwrap(), oracle(0..20));
        // Pending across the cut: they wait on a gate.
        let gate = new_gate();
        let pending: Vec<Future<i64>> = (100..110)
            .map(|x| client.submit(gated, (x, gate)).unwrap())
            .collect();
        // The submission reached the scheduler (one still in flight when the
        // connection is cut is lost with it, and errs).
        let observer = cluster.client().unwrap();
        wait_until("the scheduler to know the tasks", || {
            pending
                .iter()
                .all(|f| observer.task_state(f.key()).unwrap().is_some())
        });
        let got = std::thread::scope(|s| {
            let gather = s.spawn(|| client.gather(&pending));
            let completed = s.spawn(|| {
                let mut seen: Vec<i64> = client
                    .as_completed(pending.clone())
                    .unwrap()
                    .map(|f| f.result().unwrap())
                    .collect();
                seen.sort();
                seen
            });
            proxy.sever();
            // The tasks finish while the client is away (their reports are
            // lost with the connection, and sent again on its return).
            open_gate(gate);
            (gather.join().unwrap(), completed.join().unwrap())
        });
        assert_eq!(got.0.unwrap(), oracle(100..110));
        assert_eq!(got.1, oracle(100..110));
        assert!(proxy.accepted() >= 2, "the client reconnected");
        // A cut with nothing pending: the finished futures are still there.
        proxy.sever();
        assert_eq!(client.gather(&done).unwrap(), oracle(0..20));
        assert_eq!(client.gather(&pending).unwrap(), oracle(100..110));
        // And new work runs as before.
        let more: Vec<Future<i64>> = (200..205)
            .map(|x| client.submit(double_plus_one, (x,)).unwrap())
            .collect();
        assert_eq!(client.gather(&more).unwrap(), oracle(200..205));
    });
}

#[test]
fn a_cut_longer_than_the_grace_period_gives_scheduler_lost() {
    use dask_distributed::scheduler::state::Status;
    within(PATIENCE * 2, || {
        let cluster = LocalCluster::builder()
            .n_workers(1)
            .threads_per_worker(1)
            .dashboard_port(0)
            .client_reconnect_timeout(Duration::from_millis(100))
            .start()
            .unwrap();
        let observer = cluster.client().unwrap();
        let proxy = Proxy::start(&cluster.scheduler_addr());
        let client = patient_client(&proxy.addr);
        let gate = new_gate();
        let pending = client.submit(gated, (1, gate)).unwrap();
        let key = pending.key().clone();
        wait_until("the scheduler to know the task", || {
            observer.task_state(&key).unwrap().is_some()
        });
        proxy.refuse(true);
        proxy.sever();
        // The scheduler lets go of the absent client's task after 100 ms.
        wait_until("the scheduler to release the task", || {
            matches!(
                observer.task_state(&key).unwrap(),
                None | Some(Status::Released)
            )
        });
        open_gate(gate);
        proxy.refuse(false);
        // Back too late: told so, not left waiting.
        match pending.result_timeout(PATIENCE) {
            Err(Error::SchedulerLost { addr }) => assert_eq!(addr, proxy.addr),
            other => panic!("a future of a forgotten client got {other:?}"),
        }
        let err = client.submit(double_plus_one, (1,)).err();
        assert!(matches!(err, Some(Error::SchedulerLost { .. })), "{err:?}");
        // The cluster serves others as before.
        let f = observer.submit(double_plus_one, (5,)).unwrap();
        assert_eq!(f.result().unwrap(), oracle(5..6)[0]);
    });
}

#[test]
fn a_client_that_cannot_reconnect_in_time_gives_scheduler_lost() {
    within(PATIENCE, || {
        let cluster = LocalCluster::builder()
            .n_workers(1)
            .threads_per_worker(1)
            .dashboard_port(0)
            .start()
            .unwrap();
        let proxy = Proxy::start(&cluster.scheduler_addr());
        let client = Client::connect_with_options(
            &proxy.addr,
            ClientOptions {
                reconnect_timeout: Duration::from_millis(300),
                ..ClientOptions::default()
            },
        )
        .unwrap();
        let gate = new_gate();
        let pending = client.submit(gated, (1, gate)).unwrap();
        proxy.refuse(true);
        proxy.sever();
        let got = pending.result_timeout(PATIENCE);
        open_gate(gate);
        assert!(matches!(got, Err(Error::SchedulerLost { .. })), "{got:?}");
        let err = client.workers().unwrap_err();
        assert!(matches!(err, Error::SchedulerLost { .. }), "{err:?}");
    });
}

#[test]
fn a_scheduler_restarted_at_the_same_address_is_reported_as_restarted() {
    within(PATIENCE, || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let first = rt.block_on(server::start("127.0.0.1:0")).unwrap();
        let addr = first.addr().to_string();
        let client = patient_client(&addr);
        // No worker: the task stays pending.
        let pending = client.submit(double_plus_one, (1,)).unwrap();
        let mut left = client.as_completed(vec![pending.clone()]).unwrap();
        first.shutdown();
        // Another scheduler at the same address (once the port is free).
        let deadline = std::time::Instant::now() + PATIENCE;
        let second = loop {
            match rt.block_on(server::start(&addr)) {
                Ok(s) => break s,
                Err(e) => {
                    assert!(std::time::Instant::now() < deadline, "rebinding: {e}");
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        };
        match pending.result_timeout(PATIENCE) {
            Err(e @ Error::SchedulerRestarted { .. }) => {
                assert!(e.to_string().contains("resubmit"), "{e}")
            }
            other => panic!("a future of the old scheduler got {other:?}"),
        }
        // A pending as_completed yields the future, whose result says so.
        let f = left.next_timeout(PATIENCE).unwrap().unwrap();
        assert!(matches!(f.result(), Err(Error::SchedulerRestarted { .. })));
        let err = client.workers().unwrap_err();
        assert!(matches!(err, Error::SchedulerRestarted { .. }), "{err:?}");
        // A new client works with the new scheduler.
        assert!(patient_client(&addr).workers().unwrap().is_empty());
        second.shutdown();
    });
}

/// Set in the environment of the scheduler process [`scheduler_process`] runs.
const CHILD_ENV: &str = "DASK_RS_TEST_SCHEDULER_PROCESS";

/// Not a test: the scheduler process of
/// [`a_hung_scheduler_process_gives_scheduler_lost_and_stops_its_workers`]
/// (this test binary run again with [`CHILD_ENV`] set). Prints its address,
/// serves until its stdin closes.
#[test]
#[ignore = "helper process of the hung-scheduler test"]
fn scheduler_process() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let scheduler = rt.block_on(server::start("127.0.0.1:0")).unwrap();
    let mut out = std::io::stdout();
    writeln!(out, "scheduler at {}", scheduler.addr()).unwrap();
    out.flush().unwrap();
    let mut line = String::new();
    while std::io::stdin().read_line(&mut line).unwrap_or(0) > 0 {}
}

/// The scheduler process: continued and killed when dropped.
struct SchedulerProcess(Child);

impl SchedulerProcess {
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal}");
    }
}

impl Drop for SchedulerProcess {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.0.id().to_string()])
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_hung_scheduler_process_gives_scheduler_lost_and_stops_its_workers() {
    within(PATIENCE, || {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "reconnect::scheduler_process",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let process = SchedulerProcess(child);
        let addr = BufReader::new(stdout)
            .lines()
            .map_while(|l| l.ok())
            // After libtest's "test ... " on the same line.
            .find_map(|l| {
                l.split_once("scheduler at ")
                    .map(|(_, addr)| addr.trim().to_owned())
            })
            .expect("the scheduler process's address");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let worker = rt
            .block_on(worker::start_with(
                &addr,
                WorkerOptions {
                    heartbeat_interval: Duration::from_millis(50),
                    scheduler_timeout: Duration::from_millis(500),
                    ..WorkerOptions::new(1)
                },
            ))
            .unwrap();
        let client = Client::connect_with_options(
            &addr,
            ClientOptions {
                ping_interval: Duration::from_millis(50),
                ping_timeout: Duration::from_millis(500),
                reconnect_timeout: Duration::from_millis(500),
                ..ClientOptions::default()
            },
        )
        .unwrap();
        // Alive: work is done and checked.
        let f = client.submit(double_plus_one, (20,)).unwrap();
        assert_eq!(f.result().unwrap(), oracle(20..21)[0]);
        let gate = new_gate();
        let pending = client.submit(gated, (3, gate)).unwrap();
        // Hung: TCP still accepts, nothing answers.
        process.signal("-STOP");
        match pending.result_timeout(PATIENCE) {
            Err(Error::SchedulerLost { addr: a }) => assert_eq!(a, addr),
            other => panic!("a future of a hung scheduler got {other:?}"),
        }
        open_gate(gate);
        // The worker takes the scheduler for hung too, and stops.
        let stopped =
            rt.block_on(async { tokio::time::timeout(PATIENCE, worker.finished()).await });
        assert!(matches!(stopped, Ok(Ok(()))), "{stopped:?}");
        process.signal("-CONT");
        drop(process);
    });
}

#[test]
fn client_options_are_checked() {
    let err = Client::connect_with_options(
        "127.0.0.1:9",
        ClientOptions {
            ping_interval: Duration::from_secs(5),
            ping_timeout: Duration::from_secs(1),
            ..ClientOptions::default()
        },
    )
    .unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err:?}");
    assert!(err.to_string().contains("ping_timeout"), "{err}");
    let opts = WorkerOptions {
        scheduler_timeout: Duration::ZERO,
        ..WorkerOptions::new(1)
    };
    assert!(matches!(opts.validate(), Err(Error::InvalidConfig { .. })));
}
