//! Shared helpers: the schedulers, random frames, frame comparison, temp dirs.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use dask_core::{Collection, SchedulerRef};
use dask_sync_scheduler::SyncScheduler;
use dask_threaded::ThreadedScheduler;
use polars::prelude::*;
use proptest::prelude::*;

/// The schedulers every test computes on: sync, threaded with 1 and 4
/// threads, and an in-process `LocalCluster` (2 workers x 2 threads, real TCP
/// for control; partitions travel in-process, so closures work).
pub fn schedulers() -> &'static [(&'static str, SchedulerRef)] {
    static S: OnceLock<Vec<(&'static str, SchedulerRef)>> = OnceLock::new();
    S.get_or_init(|| {
        vec![
            ("sync", Arc::new(SyncScheduler::new()) as SchedulerRef),
            (
                "threaded-1",
                Arc::new(ThreadedScheduler::with_threads(1).unwrap()),
            ),
            (
                "threaded-4",
                Arc::new(ThreadedScheduler::with_threads(4).unwrap()),
            ),
            (
                "distributed",
                Arc::new(
                    dask_distributed::Client::with_cluster(
                        dask_distributed::LocalCluster::builder()
                            .n_workers(2)
                            .threads_per_worker(2)
                            .start()
                            .unwrap(),
                    )
                    .unwrap(),
                ),
            ),
        ]
    })
}

/// The sync scheduler.
pub fn sync() -> &'static SchedulerRef {
    &schedulers()[0].1
}

/// Relative tolerance for float results (means and sums computed in another
/// order than polars'; the data are multiples of 0.25 of magnitude <= 100 in
/// at most 80 rows, so sums are exact and a mean differs by a few ulps).
pub const REL_TOL: f64 = 1e-9;

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= REL_TOL * (1.0 + a.abs().max(b.abs()))
}

/// Asserts two frames are equal: names, dtypes, and values (floats within
/// [`REL_TOL`], nulls in the same places).
pub fn assert_frames_eq(got: &DataFrame, expected: &DataFrame, ctx: &str) {
    assert_eq!(got.schema(), expected.schema(), "{ctx}: schema");
    assert_eq!(got.height(), expected.height(), "{ctx}: height");
    for (g, e) in got.columns().iter().zip(expected.columns()) {
        let (g, e) = (g.as_materialized_series(), e.as_materialized_series());
        if g.dtype().is_float() {
            let (gf, ef) = (
                g.cast(&DataType::Float64).unwrap(),
                e.cast(&DataType::Float64).unwrap(),
            );
            for (x, y) in gf.f64().unwrap().iter().zip(ef.f64().unwrap().iter()) {
                match (x, y) {
                    (Some(x), Some(y)) => {
                        assert!(close(x, y), "{ctx}: column {}: {x} != {y}", g.name())
                    }
                    (x, y) => assert_eq!(x, y, "{ctx}: column {}", g.name()),
                }
            }
        } else {
            assert!(
                g.equals_missing(e),
                "{ctx}: column {}:\n{g:?}\n!=\n{e:?}",
                g.name()
            );
        }
    }
}

/// Computes `x` on every scheduler and compares with `expected`.
pub fn check_frame(x: &dask_dataframe::DataFrame, expected: &DataFrame) {
    for (name, s) in schedulers() {
        let got = x
            .compute_with(&**s)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_frames_eq(&got, expected, name);
    }
}

/// Sorts a frame by all its columns (for results whose row order is free).
pub fn sorted(df: &DataFrame) -> DataFrame {
    let names: Vec<PlSmallStr> = df.get_column_names_owned();
    df.sort(names, SortMultipleOptions::default()).unwrap()
}

/// Computes `x` on every scheduler and compares with `expected`, both sorted.
pub fn check_frame_unordered(x: &dask_dataframe::DataFrame, expected: &DataFrame) {
    for (name, s) in schedulers() {
        let got = x
            .compute_with(&**s)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_frames_eq(&sorted(&got), &sorted(expected), name);
    }
}

/// Computes a series on every scheduler and compares with `expected`.
pub fn check_series(x: &dask_dataframe::Series, expected: &Series) {
    for (name, s) in schedulers() {
        let got = x
            .compute_with(&**s)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_frames_eq(&got.into_frame(), &expected.clone().into_frame(), name);
    }
}

/// A random frame: `k` (Int64 in 0..4, some nulls, a group key), `i`
/// (Int64, some nulls), `x` (Float64 multiples of 0.25, some nulls), `s`
/// (String from a small alphabet, some nulls), `b` (Boolean), 0 to 80 rows.
pub fn frame() -> impl Strategy<Value = DataFrame> {
    let row = (
        prop::option::weighted(0.9, 0i64..4),
        prop::option::weighted(0.8, -1000i64..1000),
        prop::option::weighted(0.8, -400i32..400),
        prop::option::weighted(0.8, prop::sample::select(vec!["a", "b", "c", "dd"])),
        any::<bool>(),
    );
    prop::collection::vec(row, 0..80).prop_map(|rows| {
        let k: Vec<Option<i64>> = rows.iter().map(|r| r.0).collect();
        let i: Vec<Option<i64>> = rows.iter().map(|r| r.1).collect();
        let x: Vec<Option<f64>> = rows.iter().map(|r| r.2.map(|v| v as f64 * 0.25)).collect();
        let s: Vec<Option<&str>> = rows.iter().map(|r| r.3).collect();
        let b: Vec<bool> = rows.iter().map(|r| r.4).collect();
        df!("k" => k, "i" => i, "x" => x, "s" => s, "b" => b).unwrap()
    })
}

/// A random frame and a partition count (1 to 9: more than the rows of
/// small frames, so some partitions are empty).
pub fn case() -> impl Strategy<Value = (DataFrame, usize)> {
    (frame(), 1usize..10)
}

/// Proptest configuration: few cases, each computed on four schedulers.
pub fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 24,
        ..ProptestConfig::default()
    }
}

/// A fresh, empty temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `<tmp>/dask-dataframe-<pid>-<n>-<label>`.
    pub fn new(label: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "dask-dataframe-{}-{}-{label}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `text` to `name` in the directory and returns its path as a string.
    pub fn write(&self, name: &str, text: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    }

    /// `name` in the directory, as a string.
    pub fn join(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
