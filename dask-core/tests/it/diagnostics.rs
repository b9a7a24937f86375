//! Callbacks and local diagnostics on the sync and threaded schedulers: hooks
//! fire once per task of the culled plan (checked against the random DAGs'
//! `needed_keys`), scoping by thread, a panicking callback, the progress bar's
//! counts and rendered text, the profiler's records and report, resource samples.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dask_core::callbacks::{self, Callback, RunInfo, TaskEvent};
use dask_core::diagnostics::indicatif::{ProgressDrawTarget, TermLike};
use dask_core::diagnostics::{
    render_tasks_svg, write_report, Profiler, ProgressBar, ResourceProfiler,
};
use dask_core::{delayed, Collection, Delayed, Key, KeySet, SchedulerRef};
use dask_sync_scheduler::SyncScheduler;
use dask_testing::check_property;
use dask_testing::graphs::{random_dag, Failures};
use dask_threaded::ThreadedScheduler;
use proptest::prelude::*;

fn schedulers() -> Vec<SchedulerRef> {
    vec![
        Arc::new(SyncScheduler::new()),
        Arc::new(ThreadedScheduler::with_threads(1).unwrap()),
        Arc::new(ThreadedScheduler::with_threads(4).unwrap()),
    ]
}

/// Counts every hook and remembers each task's key and thread.
#[derive(Default)]
struct Recorder {
    starts: AtomicUsize,
    finishes: Mutex<Vec<bool>>,
    pre: Mutex<Vec<Key>>,
    post: Mutex<Vec<(Key, usize, bool)>>,
    n_tasks: AtomicUsize,
}

impl Callback for Recorder {
    fn start(&self, info: &RunInfo) {
        self.starts.fetch_add(1, Ordering::SeqCst);
        self.n_tasks.store(info.n_tasks, Ordering::SeqCst);
    }
    fn pretask(&self, task: &TaskEvent<'_>) {
        self.pre.lock().unwrap().push(task.key.clone());
    }
    fn posttask(&self, task: &TaskEvent<'_>, ok: bool) {
        self.post
            .lock()
            .unwrap()
            .push((task.key.clone(), task.worker, ok));
    }
    fn finish(&self, _info: &RunInfo, ok: bool) {
        self.finishes.lock().unwrap().push(ok);
    }
}

/// `(1 + 2) * 10` as three tasks plus a literal.
fn small_graph() -> Delayed<i64> {
    let a = delayed(|x: i64, y: i64| x + y).call((1, 2));
    let b = delayed(|x: i64| x * 10).call((&a,));
    delayed(|x: i64, y: i64| x + y).call((&b, &a))
}

#[test]
fn hooks_fire_once_per_task_on_every_scheduler() {
    for s in schedulers() {
        let rec = Arc::new(Recorder::default());
        let guard = callbacks::register(rec.clone());
        assert_eq!(small_graph().compute_with(s.as_ref()).unwrap(), 33);
        drop(guard);
        let post = rec.post.lock().unwrap();
        assert_eq!(rec.starts.load(Ordering::SeqCst), 1, "{}", s.name());
        assert_eq!(*rec.finishes.lock().unwrap(), [true]);
        assert_eq!(post.len(), rec.n_tasks.load(Ordering::SeqCst));
        assert_eq!(post.len(), rec.pre.lock().unwrap().len());
        assert!(post.iter().all(|(_, _, ok)| *ok));
        let keys: KeySet = post.iter().map(|(k, _, _)| k.clone()).collect();
        assert_eq!(keys.len(), post.len(), "each task once");
    }
}

#[test]
fn a_failing_task_is_reported_to_posttask_and_finish() {
    for s in schedulers() {
        let rec = Arc::new(Recorder::default());
        let _guard = callbacks::register(rec.clone());
        let bad = delayed(|x: i64| -> i64 { panic!("boom {x}") }).call((1,));
        assert!(bad.compute_with(s.as_ref()).is_err());
        assert_eq!(*rec.finishes.lock().unwrap(), [false], "{}", s.name());
        let post = rec.post.lock().unwrap();
        assert_eq!(post.len(), 1);
        assert!(!post[0].2);
    }
}

#[test]
fn callbacks_are_scoped_to_the_registering_thread_unless_global() {
    let local = Arc::new(Recorder::default());
    let global = Arc::new(Recorder::default());
    let _l = callbacks::register(local.clone());
    let g = callbacks::register_global(global.clone());
    let s = SyncScheduler::new();
    std::thread::spawn(move || {
        small_graph().compute_with(&s).unwrap();
    })
    .join()
    .unwrap();
    assert_eq!(local.starts.load(Ordering::SeqCst), 0);
    // Other tests may compute while the global callback is registered: at least ours.
    assert!(global.starts.load(Ordering::SeqCst) >= 1);
    drop(g);
    small_graph().compute_with(&SyncScheduler::new()).unwrap();
    assert_eq!(local.starts.load(Ordering::SeqCst), 1);
}

#[test]
fn a_panicking_callback_does_not_break_the_compute() {
    struct Bad;
    impl Callback for Bad {
        fn posttask(&self, _task: &TaskEvent<'_>, _ok: bool) {
            panic!("callback bug");
        }
    }
    for s in schedulers() {
        let _guard = callbacks::register(Arc::new(Bad));
        assert_eq!(small_graph().compute_with(s.as_ref()).unwrap(), 33);
    }
}

#[test]
fn hooks_see_exactly_the_needed_tasks_of_random_dags() {
    check_property(
        24,
        || (random_dag(400, Failures::None), 0..3usize),
        |(dag, which)| {
            let s = &schedulers()[which];
            let prof = Profiler::new();
            let guard = prof.register();
            let out = s.compute(&dag.graph, &dag.outputs);
            drop(guard);
            prop_assert!(out.is_ok());
            let records = prof.results();
            let mut seen: HashMap<Key, usize> = HashMap::new();
            for r in &records {
                *seen.entry(r.key.clone()).or_default() += 1;
                prop_assert!(r.start <= r.end);
                prop_assert!(r.ok);
            }
            let needed: KeySet = dag.needed_keys().into_iter().collect();
            let got: KeySet = seen.keys().cloned().collect();
            prop_assert_eq!(got, needed);
            prop_assert!(seen.values().all(|n| *n == 1));
            Ok(())
        },
    );
}

/// A terminal that keeps what the progress bar writes.
#[derive(Debug, Clone, Default)]
struct Captured(Arc<Mutex<String>>);

impl TermLike for Captured {
    fn width(&self) -> u16 {
        100
    }
    fn move_cursor_up(&self, _n: usize) -> io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _n: usize) -> io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _n: usize) -> io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _n: usize) -> io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> io::Result<()> {
        let mut out = self.0.lock().unwrap();
        out.push_str(s);
        out.push('\n');
        Ok(())
    }
    fn write_str(&self, s: &str) -> io::Result<()> {
        self.0.lock().unwrap().push_str(s);
        Ok(())
    }
    fn clear_line(&self) -> io::Result<()> {
        Ok(())
    }
    fn flush(&self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn progress_bar_counts_every_task_and_draws_completion() {
    for s in schedulers() {
        let term = Captured::default();
        let t = term.clone();
        let bar = ProgressBar::with_target(Duration::ZERO, move || {
            ProgressDrawTarget::term_like(Box::new(t.clone()))
        });
        let guard = bar.register();
        let xs: Vec<Delayed<i64>> = (0..50)
            .map(|i| delayed(|x: i64| x * x).call((i,)))
            .collect();
        let got = dask_core::compute_with(&xs, s.as_ref()).unwrap();
        assert_eq!(got, (0..50).map(|i| i * i).collect::<Vec<i64>>());
        drop(guard);
        let (done, of) = bar.counts().unwrap();
        assert_eq!(done, of, "{}", s.name());
        assert_eq!(of, 50);
        let text = term.0.lock().unwrap().clone();
        assert!(text.contains("100% Completed"), "drawn: {text:?}");
    }
}

#[test]
fn progress_bar_with_a_minimum_stays_hidden_for_quick_computes() {
    let term = Captured::default();
    let t = term.clone();
    let bar = ProgressBar::with_target(Duration::from_secs(3600), move || {
        ProgressDrawTarget::term_like(Box::new(t.clone()))
    });
    let _guard = bar.register();
    assert_eq!(small_graph().compute().unwrap(), 33);
    assert_eq!(bar.counts(), Some((3, 3)));
    assert_eq!(*term.0.lock().unwrap(), "");
}

#[test]
fn profiler_records_render_as_svg_and_html() {
    let s = ThreadedScheduler::with_threads(2).unwrap();
    let prof = Profiler::new();
    let guard = prof.register();
    let xs: Vec<Delayed<u64>> = (0..20u64)
        .map(|i| {
            delayed(|x: u64| (0..20_000u64).fold(x, |a, b| a ^ b.wrapping_mul(a | 1))).call((i,))
        })
        .collect();
    let total = || dask_core::compute_with(&xs, &s).unwrap().len();
    assert_eq!(total(), 20);
    drop(guard);
    let records = prof.results();
    assert_eq!(records.len(), 20);
    assert!(records.iter().all(|r| r.worker < 2 && r.start <= r.end));
    let svg = render_tasks_svg(&records);
    assert_eq!(svg.matches("<rect class=\"task\"").count(), 20);
    assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));

    let res = ResourceProfiler::with_interval(Duration::from_millis(5));
    let guard = res.register();
    total();
    drop(guard);
    let samples = res.results();
    if cfg!(target_os = "linux") {
        // The sampler takes a last sample when the compute finishes.
        assert!(!samples.is_empty());
        assert!(samples
            .iter()
            .all(|s| s.rss_bytes > 0 && s.cpu_percent >= 0.0));
    }

    let dir = std::env::temp_dir().join(format!("dask-profile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("report.html");
    write_report(&path, &prof, Some(&res)).unwrap();
    let html = std::fs::read_to_string(&path).unwrap();
    assert!(html.contains("20 tasks") && html.contains("class=\"resources\""));
    let bad = write_report(dir.join("missing-dir/report.html"), &prof, None).unwrap_err();
    assert!(bad.to_string().contains("missing-dir"), "{bad}");
    std::fs::remove_dir_all(&dir).unwrap();
}
