//! Tasks that submit tasks: `get_client` inside a task, and the automatic
//! and explicit `secede`/`rejoin` that keep a one-thread worker from
//! deadlocking. On LocalClusters (thread workers, closures) and on a real
//! `dask worker`-style process (this test binary running
//! `process::run_worker`, registered ops). Oracles: plain-Rust sums.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Duration;

use dask_distributed::coordination::{Coordinator, Event, Queue};
use dask_distributed::{get_client, rejoin, secede, Client, Error, LocalCluster};
use dask_testing::{test_timeout, within};

/// A wait that should succeed: half the test's limit.
fn long() -> Duration {
    test_timeout() / 2
}

fn one_thread_client() -> Client {
    let cluster = LocalCluster::builder()
        .n_workers(1)
        .threads_per_worker(1)
        .no_dashboard()
        .start()
        .unwrap();
    Client::with_cluster(cluster).unwrap()
}

fn square_plus_one(x: u64) -> u64 {
    x * x + 1
}
dask_core::register_op!(square_plus_one);

/// Submits `n` subtasks from inside a task and sums their results.
fn fan_out(n: u64) -> u64 {
    let client = get_client().expect("running in a task");
    let futures = client.map(square_plus_one, 0..n).expect("submitted");
    client.gather(&futures).expect("gathered").into_iter().sum()
}
dask_core::register_op!(fan_out);

/// Submits `n` tasks that each submit subtasks (`fan_out(i + 1)`), and waits
/// on each with `Future::result`.
fn fan_out_nested(n: u64) -> u64 {
    let client = get_client().expect("running in a task");
    let futures = client.map(fan_out, 1..=n).expect("submitted");
    futures.iter().map(|f| f.result().expect("result")).sum()
}
dask_core::register_op!(fan_out_nested);

fn fan_out_oracle(n: u64) -> u64 {
    (0..n).map(|x| x * x + 1).sum()
}

#[test]
fn a_task_gathering_100_subtasks_finishes_on_one_worker_thread() {
    within(test_timeout(), || {
        let client = one_thread_client();
        // Closures, through the in-process worker client.
        let parent = client
            .submit(
                |n: u64| -> u64 {
                    let client = get_client().expect("running in a task");
                    let futures = client.map(|x: u64| x * x + 1, 0..n).expect("map");
                    client.gather(&futures).expect("gather").into_iter().sum()
                },
                (100u64,),
            )
            .unwrap();
        assert_eq!(parent.result().unwrap(), fan_out_oracle(100));
        // Registered ops, from a second (wire) client of the same cluster.
        let other = client.cluster().unwrap().client().unwrap();
        let parent = other.submit(fan_out, (100u64,)).unwrap();
        assert_eq!(parent.result().unwrap(), fan_out_oracle(100));
    });
}

#[test]
fn tasks_submitting_tasks_that_submit_tasks_finish_on_one_worker_thread() {
    within(test_timeout(), || {
        let client = one_thread_client();
        let n = 6u64;
        let top = client.submit(fan_out_nested, (n,)).unwrap();
        let expected: u64 = (1..=n).map(fan_out_oracle).sum();
        assert_eq!(top.result().unwrap(), expected);
        // Several parents at once, each waiting on its own children.
        let parents = client.map(fan_out, 10..20u64).unwrap();
        let got = client.gather(&parents).unwrap();
        let expected: Vec<u64> = (10..20u64).map(fan_out_oracle).collect();
        assert_eq!(got, expected);
    });
}

#[test]
fn waiting_in_a_task_on_a_future_that_never_finishes_times_out() {
    within(test_timeout(), || {
        let client = one_thread_client();
        let parent = client
            .submit(
                |id: u64| -> String {
                    let client = get_client().expect("running in a task");
                    // A child that cannot finish before the test says so; it
                    // gives its thread back while it waits.
                    let child = client
                        .submit(
                            |id: u64| -> u64 {
                                secede().expect("in a task");
                                let coord = Coordinator::for_task().expect("in a task");
                                let event = Event::new(&coord, format!("release-{id}")).unwrap();
                                event.wait(long()).expect("released by the test");
                                rejoin().expect("in a task");
                                id
                            },
                            (id,),
                        )
                        .expect("submitted");
                    match child.result_timeout(Duration::from_millis(100)) {
                        Err(Error::Timeout { .. }) => "timeout".to_owned(),
                        other => format!("expected a timeout, got {other:?}"),
                    }
                },
                (7u64,),
            )
            .unwrap();
        assert_eq!(parent.result().unwrap(), "timeout");
        Event::new(&client, "release-7").unwrap().set().unwrap();
    });
}

#[test]
fn an_explicit_secede_lets_a_waiting_task_give_its_thread_to_the_producer() {
    within(test_timeout(), || {
        let client = one_thread_client();
        // The consumer is submitted first and waits on a queue; the producer
        // can only run on the one thread once the consumer seceded.
        let consumer = client
            .submit(
                |name: String| -> u64 {
                    secede().expect("in a task");
                    secede().expect("twice is harmless");
                    let coord = Coordinator::for_task().expect("in a task");
                    let queue = Queue::new(&coord, name, None).unwrap();
                    let got: u64 = queue.get(long()).expect("the producer ran");
                    rejoin().expect("in a task");
                    rejoin().expect("twice is harmless");
                    got * 10
                },
                ("secede-queue".to_owned(),),
            )
            .unwrap();
        let producer = client
            .submit(
                |name: String| -> u64 {
                    let coord = Coordinator::for_task().expect("in a task");
                    let queue = Queue::new(&coord, name, None).unwrap();
                    queue.put(42u64, long()).expect("put");
                    42
                },
                ("secede-queue".to_owned(),),
            )
            .unwrap();
        assert_eq!(producer.result().unwrap(), 42);
        assert_eq!(consumer.result().unwrap(), 420);
    });
}

#[test]
fn get_client_secede_and_rejoin_outside_a_task_are_refused() {
    for result in [get_client().map(|_| ()), secede(), rejoin()] {
        match result {
            Err(Error::InvalidConfig { message }) => {
                assert!(message.contains("outside a task"), "{message}")
            }
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }
}

/// Set in the worker process of
/// [`a_worker_process_runs_tasks_that_submit_tasks`]: the scheduler address.
const WORKER_ENV: &str = "DASK_RS_WORKER_CLIENT_TEST_WORKER";

/// Kills and reaps a child process when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A scheduler in this process and one worker process with one thread (this
/// test binary, which links the registered ops): the worker client there
/// talks to the scheduler over TCP and ships registered ops.
#[test]
fn a_worker_process_runs_tasks_that_submit_tasks() {
    if let Ok(addr) = std::env::var(WORKER_ENV) {
        // The worker's part: runs until the scheduler goes or it is killed.
        let _ = dask_distributed::process::run_worker(&addr, 1);
        return;
    }
    within(test_timeout(), || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let scheduler = runtime
            .block_on(dask_distributed::scheduler::server::start("127.0.0.1:0"))
            .unwrap();
        let addr = scheduler.addr().to_string();
        let child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "worker_client::a_worker_process_runs_tasks_that_submit_tasks",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(WORKER_ENV, &addr)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut child = KillOnDrop(child);
        let stdout = child.0.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // libtest prints the test's name on the same line first.
                if line.contains("worker at ") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(long())
            .expect("the worker process never started");
        let client = Client::connect(&addr).unwrap();
        // It printed its address after sending its registration: wait until
        // the scheduler has it (the watchdog bounds the loop).
        while client.workers().unwrap().is_empty() {
            std::thread::sleep(Duration::from_millis(10));
        }
        let workers = client.workers().unwrap();
        assert_eq!(workers.len(), 1, "{workers:?}");
        assert_eq!(workers[0].nthreads, 1);
        let parent = client.submit(fan_out, (100u64,)).unwrap();
        assert_eq!(parent.result().unwrap(), fan_out_oracle(100));
        let top = client.submit(fan_out_nested, (4u64,)).unwrap();
        assert_eq!(
            top.result().unwrap(),
            (1..=4u64).map(fan_out_oracle).sum::<u64>()
        );
        drop(client);
        drop(child);
        scheduler.shutdown();
    });
}
