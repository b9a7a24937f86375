//! The foundation's random-DAG properties on a LocalCluster (in-process
//! workers, real TCP) and on a cluster of worker processes: the same values
//! as the sync scheduler, and with one failing or panicking task, the same
//! failing key; with several, a failing task the outputs need.
//!
//! The worker processes are this test binary run again ([`worker_process`]):
//! they link the same registered ops (dask-testing's random-DAG op), so every
//! task and value crosses process boundaries by its wire form.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use dask_core::Scheduler;
use dask_distributed::scheduler::server::{self, SchedulerHandle};
use dask_distributed::{Client, LocalCluster};
use dask_sync_scheduler::SyncScheduler;
use dask_testing::check_property;
use dask_testing::graphs::{random_dag, u64s, Failures, RandomDag};
use proptest::prelude::*;

const MAX_TASKS: usize = 1000;

fn client() -> Client {
    let cluster = LocalCluster::builder()
        .n_workers(2)
        .threads_per_worker(2)
        .start()
        .unwrap();
    Client::with_cluster(cluster).unwrap()
}

#[test]
fn same_results_as_sync() {
    same_results(client(), 24);
}

#[test]
fn one_failing_task_gives_the_same_key_as_sync() {
    one_failure(client(), 24);
}

#[test]
fn several_failures_report_a_needed_failing_task() {
    several_failures(client(), 16);
}

#[test]
fn worker_processes_give_the_same_results_as_sync() {
    let cluster = ProcessCluster::start(2);
    same_results(cluster.client(), 24);
}

#[test]
fn worker_processes_report_the_same_failing_key_as_sync() {
    let mut cluster = ProcessCluster::start(2);
    one_failure(cluster.client(), 24);
    // Panicking tasks did not take a worker process down.
    assert!(cluster.all_alive(), "a worker process exited");
}

#[test]
fn worker_processes_report_a_needed_failing_task() {
    let cluster = ProcessCluster::start(2);
    several_failures(cluster.client(), 16);
}

fn same_results(client: Client, cases: u32) {
    check_property(
        cases,
        || random_dag(MAX_TASKS, Failures::None),
        move |dag: RandomDag| {
            let want = dag.expected().expect("no failing task");
            let got = client.compute(&dag.graph, &dag.outputs);
            prop_assert!(got.is_ok(), "{:?}", got.err());
            prop_assert_eq!(u64s(&got.unwrap()), want);
            Ok(())
        },
    );
}

fn one_failure(client: Client, cases: u32) {
    check_property(
        cases,
        || random_dag(MAX_TASKS, Failures::AtMostOne),
        move |dag: RandomDag| {
            let sync = SyncScheduler::new().compute(&dag.graph, &dag.outputs);
            let got = client.compute(&dag.graph, &dag.outputs);
            match (&sync, &got) {
                (Ok(a), Ok(b)) => prop_assert_eq!(u64s(a), u64s(b)),
                (Err(a), Err(b)) => prop_assert_eq!(
                    a.failed_key(),
                    b.failed_key(),
                    "sync: {}, distributed: {}",
                    a,
                    b
                ),
                _ => prop_assert!(
                    false,
                    "sync {:?} vs distributed {:?}",
                    sync.is_ok(),
                    got.is_ok()
                ),
            }
            Ok(())
        },
    );
}

fn several_failures(client: Client, cases: u32) {
    check_property(
        cases,
        || random_dag(MAX_TASKS, Failures::Several),
        move |dag: RandomDag| {
            let got = client.compute(&dag.graph, &dag.outputs);
            match (dag.expected(), got) {
                (Ok(want), Ok(v)) => prop_assert_eq!(u64s(&v), want),
                (Err(needed), Err(e)) => prop_assert!(
                    e.failed_key().is_some_and(|k| needed.contains(k)),
                    "{e} not among {needed:?}"
                ),
                (want, got) => prop_assert!(
                    false,
                    "oracle ok={} vs distributed ok={}",
                    want.is_ok(),
                    got.is_ok()
                ),
            }
            Ok(())
        },
    );
}

/// Set (to the scheduler's address) in the environment of a worker process.
const WORKER_ENV: &str = "DASK_RS_IT_WORKER_OF";

/// Not a test: the worker process of the process-cluster properties (this
/// test binary run again with [`WORKER_ENV`] set). Prints `worker at ADDR`,
/// serves until its scheduler goes away or it is killed.
#[test]
#[ignore = "helper process of the worker-process property tests"]
fn worker_process() {
    let Some(addr) = std::env::var_os(WORKER_ENV) else {
        return;
    };
    let addr = addr.into_string().expect("a UTF-8 scheduler address");
    dask_distributed::process::run_worker(&addr, 2).expect("the worker process runs");
}

/// A scheduler in this process and workers in processes of their own; the
/// processes are killed when it is dropped.
struct ProcessCluster {
    /// Runs the scheduler.
    _runtime: tokio::runtime::Runtime,
    scheduler: SchedulerHandle,
    workers: Vec<Child>,
}

impl ProcessCluster {
    fn start(n_workers: usize) -> ProcessCluster {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let scheduler = runtime.block_on(server::start("127.0.0.1:0")).unwrap();
        let mut cluster = ProcessCluster {
            _runtime: runtime,
            scheduler,
            workers: Vec::new(),
        };
        let addr = cluster.scheduler.addr().to_string();
        for _ in 0..n_workers {
            let mut child = Command::new(std::env::current_exe().unwrap())
                .args([
                    "properties::worker_process",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(WORKER_ENV, &addr)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let stdout = child.stdout.take().unwrap();
            cluster.workers.push(child);
            BufReader::new(stdout)
                .lines()
                .map_while(|l| l.ok())
                // After libtest's "test ... " on the same line.
                .find(|l| l.contains("worker at "))
                .expect("the worker process's address");
        }
        cluster
    }

    fn client(&self) -> Client {
        let client = Client::connect(&self.scheduler.addr().to_string()).unwrap();
        let n = self.workers.len();
        let deadline = std::time::Instant::now() + dask_testing::test_timeout();
        while client.workers().unwrap().len() < n {
            assert!(
                std::time::Instant::now() < deadline,
                "{n} worker processes did not register"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        client
    }

    fn all_alive(&mut self) -> bool {
        self.workers
            .iter_mut()
            .all(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for ProcessCluster {
    fn drop(&mut self) {
        for c in &mut self.workers {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.scheduler.shutdown();
    }
}
