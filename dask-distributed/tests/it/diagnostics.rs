//! Distributed diagnostics on LocalClusters (in-process workers, real TCP):
//! the task stream against the graphs that ran, progress bars over futures,
//! performance reports, the dashboard's `/tasks` page and its JSON.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use dask_core::diagnostics::indicatif::ProgressDrawTarget;
use dask_core::{Key, Scheduler, Value};
use dask_distributed::dashboard::model::task_group;
use dask_distributed::task_stream::{RunStatus, TaskStreamRecord};
use dask_distributed::{Client, Error, FutureStatus, LocalCluster};
use dask_sync_scheduler::SyncScheduler;
use dask_testing::graphs::{random_dag, u64s, Failures, RandomDag};
use dask_testing::{check_property, test_timeout, within, INTENTIONAL_PANIC};
use proptest::prelude::*;

use super::dashboard::{get, two_group_graph};

const WORKERS: usize = 2;
const THREADS: u32 = 2;

fn cluster() -> Client {
    let cluster = LocalCluster::builder()
        .n_workers(WORKERS)
        .threads_per_worker(THREADS)
        .no_dashboard()
        .start()
        .unwrap();
    let client = Client::with_cluster(cluster).unwrap();
    // Every worker registered, so every one shows in reports.
    let deadline = std::time::Instant::now() + test_timeout();
    while client.workers().unwrap().len() < WORKERS {
        assert!(
            std::time::Instant::now() < deadline,
            "workers never registered"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    client
}

/// The stream's current end: records from here on are new.
fn stream_end(client: &Client) -> u64 {
    client.task_stream_since(u64::MAX).unwrap().next
}

/// Checks the records of one run against the keys that had to run: one
/// record per key, each on a worker of the cluster, on one of its threads,
/// with start <= stop and the key's prefix.
fn check_records(
    records: &[TaskStreamRecord],
    expected: &[Key],
    workers: &[String],
) -> Result<(), TestCaseError> {
    let mut got: Vec<Key> = records.iter().map(|r| r.key.clone()).collect();
    got.sort();
    let mut want = expected.to_vec();
    want.sort();
    want.dedup();
    prop_assert_eq!(got, want, "one record per executed task");
    for r in records {
        prop_assert!(r.start <= r.stop, "{r:?}");
        prop_assert!(r.start > 1.0e9, "wall-clock seconds since the epoch: {r:?}");
        prop_assert!(
            workers.contains(&r.worker),
            "{} not in {workers:?}",
            r.worker
        );
        prop_assert!(r.thread < THREADS, "{r:?}");
        prop_assert_eq!(r.status, RunStatus::Ok);
        prop_assert_eq!(r.prefix.as_str(), task_group(r.key.name()));
    }
    let seqs: BTreeSet<u64> = records.iter().map(|r| r.seq).collect();
    prop_assert_eq!(seqs.len(), records.len(), "sequence numbers are distinct");
    Ok(())
}

#[test]
fn the_task_stream_holds_one_record_per_task_of_random_graphs() {
    let client = cluster();
    let workers = client.cluster().unwrap().worker_addrs();
    check_property(
        12,
        || random_dag(300, Failures::None),
        move |dag: RandomDag| {
            let since = stream_end(&client);
            let got = client.compute_graph(&dag.graph, &dag.outputs);
            prop_assert!(got.is_ok(), "{:?}", got.err());
            let want = SyncScheduler::new()
                .compute(&dag.graph, &dag.outputs)
                .unwrap();
            prop_assert_eq!(u64s(&got.unwrap()), u64s(&want));
            let page = client.task_stream_since(since).unwrap();
            prop_assert_eq!(page.first, 0, "nothing fell out of the ring");
            check_records(&page.records, &dag.needed_keys(), &workers)?;
            // Records of one thread never overlap: each is one lane.
            let mut lanes: Vec<&TaskStreamRecord> = page.records.iter().collect();
            lanes.sort_by(|a, b| {
                (&a.worker, a.thread)
                    .cmp(&(&b.worker, b.thread))
                    .then(a.start.total_cmp(&b.start))
            });
            for w in lanes.windows(2) {
                if (&w[0].worker, w[0].thread) == (&w[1].worker, w[1].thread) {
                    prop_assert!(w[0].stop <= w[1].start, "{:?} overlaps {:?}", w[0], w[1]);
                }
            }
            Ok(())
        },
    );
}

#[test]
fn get_task_stream_keeps_the_newest_records_and_marks_failures() {
    within(test_timeout(), || {
        let cluster = LocalCluster::builder()
            .n_workers(1)
            .threads_per_worker(2)
            .no_dashboard()
            .task_stream_capacity(10)
            .start()
            .unwrap();
        let client = Client::with_cluster(cluster).unwrap();
        let futures = client.map(|x: i64| x * 3, 0..25i64).unwrap();
        let got = client.gather(&futures).unwrap();
        assert_eq!(got, (0..25i64).map(|x| x * 3).collect::<Vec<_>>());
        let all = client.get_task_stream().unwrap();
        assert_eq!(all.len(), 10, "the ring keeps its capacity");
        let page = client.task_stream_since(0).unwrap();
        assert_eq!((page.first, page.next), (15, 25));
        let seqs: Vec<u64> = all.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, (15..25).collect::<Vec<u64>>());
        let keys: BTreeSet<&Key> = futures.iter().map(|f| f.key()).collect();
        assert!(all.iter().all(|r| keys.contains(&r.key)));

        dask_testing::silence_intentional_panics();
        let bad = client
            .submit(
                |x: i64| -> i64 {
                    if x > 0 {
                        panic!("{INTENTIONAL_PANIC}");
                    }
                    x
                },
                (1i64,),
            )
            .unwrap();
        assert!(bad.result().is_err());
        let last = client.get_task_stream().unwrap();
        let rec = last.iter().find(|r| &r.key == bad.key()).unwrap();
        assert_eq!(rec.status, RunStatus::Error);
        assert!(rec.start <= rec.stop);

        // Capacity 0: nothing is kept, sequence numbers still advance.
        let cluster = LocalCluster::builder()
            .n_workers(1)
            .threads_per_worker(1)
            .no_dashboard()
            .task_stream_capacity(0)
            .start()
            .unwrap();
        let client = Client::with_cluster(cluster).unwrap();
        let futures = client.map(|x: i64| x + 1, 0..5i64).unwrap();
        client.gather(&futures).unwrap();
        assert!(client.get_task_stream().unwrap().is_empty());
        assert_eq!(client.task_stream_since(0).unwrap().next, 5);
    });
}

/// A gate tasks wait at (bounded: a test never hangs on it).
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    fn wait(&self) {
        let (open, cv) = &*self.0;
        let guard = open.lock().unwrap();
        let _ = cv
            .wait_timeout_while(guard, test_timeout(), |open| !*open)
            .unwrap();
    }

    fn open(&self) {
        let (open, cv) = &*self.0;
        *open.lock().unwrap() = true;
        cv.notify_all();
    }
}

#[test]
fn progress_counts_every_future_and_finishes() {
    within(test_timeout(), || {
        let client = cluster();
        let n = 150i64;
        let futures = client.map(|x: i64| x * x, 0..n).unwrap();
        let progress = client
            .progress_with(&futures, ProgressDrawTarget::hidden())
            .unwrap();
        let counts = progress.wait(test_timeout()).unwrap();
        assert_eq!(counts.total, n as u64);
        assert_eq!(counts.finished, n as u64);
        assert_eq!((counts.erred, counts.cancelled), (0, 0));
        assert!(counts.is_complete() && progress.is_finished());
        assert_eq!(progress.bar_position(), (n as u64, n as u64));
        assert_eq!(
            client.gather(&futures).unwrap(),
            (0..n).map(|x| x * x).collect::<Vec<_>>()
        );
        // On futures already done: complete at once.
        let again = client
            .progress_with(&futures, ProgressDrawTarget::hidden())
            .unwrap();
        assert!(again.is_finished());
        assert_eq!(again.counts().finished, n as u64);
        // No futures: complete, 0 of 0.
        let none = client
            .progress_with::<i64>(&[], ProgressDrawTarget::hidden())
            .unwrap();
        assert_eq!(none.wait(Duration::ZERO).unwrap().total, 0);
    });
}

#[test]
fn progress_counts_failures_times_out_and_cancels() {
    within(test_timeout(), || {
        dask_testing::silence_intentional_panics();
        let client = cluster();
        let futures = client
            .map(
                |x: i64| -> i64 {
                    if x % 4 == 0 {
                        panic!("{INTENTIONAL_PANIC}");
                    }
                    x
                },
                0..20i64,
            )
            .unwrap();
        let counts = client
            .progress_with(&futures, ProgressDrawTarget::hidden())
            .unwrap()
            .wait(test_timeout())
            .unwrap();
        let failing = (0..20).filter(|x| x % 4 == 0).count() as u64;
        assert_eq!((counts.finished, counts.erred), (20 - failing, failing));
        let statuses = futures
            .iter()
            .filter(|f| f.status() == FutureStatus::Error)
            .count() as u64;
        assert_eq!(statuses, failing);

        // A blocked task: a short wait times out, cancel ends the watch.
        let gate = Gate::default();
        let g = gate.clone();
        let blocked = client
            .submit(
                move |x: i64| {
                    g.wait();
                    x
                },
                (7i64,),
            )
            .unwrap();
        let progress = client
            .progress_with(std::slice::from_ref(&blocked), ProgressDrawTarget::hidden())
            .unwrap();
        let err = progress.wait(Duration::from_millis(20)).unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
        progress.cancel();
        let counts = progress.wait(Duration::ZERO).unwrap();
        assert_eq!((counts.total, counts.done()), (1, 0));
        assert!(progress.is_finished());
        gate.open();
        assert_eq!(blocked.result().unwrap(), 7);

        // A cancelled future counts as done.
        let gate = Gate::default();
        let g = gate.clone();
        let held = client
            .submit(
                move |x: i64| {
                    g.wait();
                    x
                },
                (8i64,),
            )
            .unwrap();
        let progress = client
            .progress_with(std::slice::from_ref(&held), ProgressDrawTarget::hidden())
            .unwrap();
        held.cancel().unwrap();
        let counts = progress.wait(test_timeout()).unwrap();
        assert_eq!(counts.cancelled, 1);
        gate.open();
    });
}

#[test]
fn performance_report_writes_every_prefix_and_refuses_a_missing_directory() {
    within(test_timeout(), || {
        let client = cluster();
        let dir = std::env::temp_dir().join(format!("dask-rs-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("report.html");
        let (graph, outputs) = two_group_graph(10, Duration::from_millis(1));
        let got = client
            .performance_report(&path, || client.compute_graph(&graph, &outputs))
            .unwrap()
            .unwrap();
        let want = SyncScheduler::new().compute(&graph, &outputs).unwrap();
        let as_u64 = |vs: &[Value]| -> Vec<u64> {
            vs.iter()
                .map(|v| *v.downcast_ref::<u64>().unwrap())
                .collect()
        };
        assert_eq!(as_u64(&got), as_u64(&want));
        let html = std::fs::read_to_string(&path).unwrap();
        let prefixes: BTreeSet<&str> = graph.keys().map(|k| task_group(k.name())).collect();
        assert_eq!(prefixes.len(), 2);
        for p in &prefixes {
            assert!(
                html.contains(&format!("data-prefix=\"{p}\"")),
                "{p} missing"
            );
        }
        // One bar per task run in the timeline.
        assert_eq!(html.matches("<rect class=\"task\"").count(), graph.len());
        for w in client.cluster().unwrap().worker_addrs() {
            assert!(html.contains(&w), "worker {w} missing");
        }
        assert!(html.contains("class=\"memory\""));
        assert!(
            !html.contains("<script") && !html.contains("<link"),
            "standalone"
        );

        // The guard form gives the same summary figures.
        let report =
            dask_distributed::PerformanceReport::start(&client, dir.join("two.html")).unwrap();
        let futures = client.map(|x: i64| x - 1, 0..30i64).unwrap();
        client.gather(&futures).unwrap();
        let summary = report.finish().unwrap();
        assert_eq!(summary.tasks, 30);
        assert_eq!(summary.erred, 0);
        assert_eq!(summary.dropped, 0);
        let keys: BTreeSet<String> = futures
            .iter()
            .map(|f| task_group(f.key().name()).to_owned())
            .collect();
        assert_eq!(summary.prefixes, keys.into_iter().collect::<Vec<_>>());

        // A directory that does not exist: refused before the closure runs.
        let ran = AtomicBool::new(false);
        let err = client
            .performance_report(dir.join("no-such-dir").join("r.html"), || {
                ran.store(true, Ordering::Relaxed)
            })
            .unwrap_err();
        assert!(err.to_string().contains("no-such-dir"), "{err}");
        assert!(!ran.load(Ordering::Relaxed));
        std::fs::remove_dir_all(&dir).unwrap();
    });
}

#[test]
fn the_dashboard_serves_the_task_stream() {
    within(test_timeout(), || {
        let cluster = LocalCluster::builder()
            .n_workers(2)
            .threads_per_worker(2)
            .dashboard_port(0)
            .start()
            .unwrap();
        let addr = cluster.dashboard_address().unwrap();
        let client = Client::with_cluster(cluster).unwrap();
        let (graph, outputs) = two_group_graph(6, Duration::ZERO);
        client.compute_graph(&graph, &outputs).unwrap();

        let page = get(&addr, "/tasks");
        assert_eq!(page.status, 200);
        assert!(page.body.contains("/static/tasks.js"));
        assert_eq!(get(&addr, "/static/tasks.js").status, 200);
        assert!(get(&addr, "/status").body.contains("href=\"/tasks\""));

        let api = get(&addr, "/api/task-stream?since=0");
        assert_eq!(api.status, 200);
        let json: serde_json::Value = serde_json::from_str(&api.body).unwrap();
        assert_eq!(json["enabled"].as_bool(), Some(true));
        let records = json["records"].as_array().unwrap();
        let keys: BTreeSet<String> = records
            .iter()
            .map(|r| r["key"].as_str().unwrap().to_owned())
            .collect();
        let want: BTreeSet<String> = graph.keys().map(|k| k.to_string()).collect();
        assert_eq!(keys, want);
        assert_eq!(json["next"], graph.len() as u64);
        let workers = client.cluster().unwrap().worker_addrs();
        for r in records {
            assert!(workers.contains(&r["worker"].as_str().unwrap().to_owned()));
            assert!(r["start"].as_f64().unwrap() <= r["stop"].as_f64().unwrap());
            assert_eq!(r["ok"].as_bool(), Some(true));
        }
        // Paging: since and limit.
        let json: serde_json::Value =
            serde_json::from_str(&get(&addr, "/api/task-stream?since=3&limit=2").body).unwrap();
        let seqs: Vec<u64> = json["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs, vec![3, 4]);
        assert_eq!(json["next"], 5);
        // A malformed number is ignored (the newest records are served).
        assert_eq!(get(&addr, "/api/task-stream?since=x").status, 200);
    });
}
