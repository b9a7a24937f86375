//! The array section of `cargo xtask bench` (issue 4's benchmark): dask-array
//! on the sync and threaded schedulers next to plain ndarray on the whole
//! array, in the same process.
//!
//! Cases, on a seeded uniform `x` (`dask_array::random::random`):
//!
//! - `(x + x.T).sum()` on `n x n` (default 20000) in `n/10`-square chunks
//!   (100 chunks), first with `x` generated inside the graph (the seed's
//!   workload: nothing is in memory before the compute; its peak memory is
//!   the fusion target; dask-array inlines the random blocks into their
//!   readers, see `dask_array::optimize`), once more on the threaded
//!   scheduler with that inlining off (`inline_creation(0)`: each block is
//!   held until its mirror image is read, the figure before the
//!   optimization; it runs after the inlined runs, so memory they left in
//!   the allocator can make its figure low: run with
//!   `MALLOC_MMAP_THRESHOLD_=1048576` to have glibc map every chunk on its own
//!   and unmap it when freed, for figures that follow live memory), then with
//!   `x` persisted in memory, next to ndarray
//!   on the same values: `(&x + &x.t()).sum()` (a temporary, as NumPy
//!   does), a `Zip` fold (no temporary) and rayon over row bands of views;
//! - `x.dot(x.T).sum()` on `dot_n x dot_n` (default 4000) in `dot_n/4`
//!   chunks, persisted, next to `x.dot(&x.t()).sum()` and rayon over row
//!   bands;
//! - `x.mean(axis=0)` on the persisted `n x n` array, next to
//!   `mean_axis(Axis(0))` and rayon over row bands.
//!
//! Every figure is the median of `reps` timed runs (no warm-up: the inputs
//! are already in memory when a persisted case starts). Every result is
//! checked against ndarray's on the same values (relative tolerance 1e-9): a
//! mismatch ends the benchmark with an error.
//!
//! Memory: a sampler thread reads `VmRSS` from `/proc/self/status` every 5
//! ms while a runner works; a row's figure is the highest resident memory
//! seen above the resident memory when the run started (the largest over the
//! reps). The allocator may reuse memory freed by an earlier case without
//! growing the resident set, so a later case's figure can understate: the
//! generated `(x + x.T).sum()` runs first for that reason (and
//! `--only array` runs nothing before it). The dask cases run before the
//! ndarray ones, so the persisted chunks and ndarray's copy of `x` are never
//! in memory together: the peak of the process is about `2 x 8 n^2` bytes
//! (ndarray's `x` plus its temporary), 6.4 GB at `n = 20000`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dask_array::ndarray::{s, Array1, Array2, ArrayView2, Axis, Ix1, Ix2, Zip};
use dask_array::{random, Array, Collection};
use dask_core::Scheduler;
use dask_sync_scheduler::SyncScheduler;
use dask_threaded::ThreadedScheduler;
use rayon::prelude::*;

use crate::BenchResult;

/// The seed of every random array.
const SEED: u64 = 42;
/// Threaded dask-array vs single-threaded ndarray on `(x + x.T).sum()`.
const SPEEDUP_TARGET: f64 = 1.6;
/// Peak memory of the generated `(x + x.T).sum()`, in chunk rows.
const PEAK_TARGET_ROWS: f64 = 2.0;
/// Results agree within this relative tolerance.
const RTOL: f64 = 1e-9;

/// The sizes of the array cases.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sizes {
    /// Edge of the square array of `(x + x.T).sum()` and `mean`.
    pub n: usize,
    /// Edge of its square chunks.
    pub chunk: usize,
    /// Edge of the square array of `x.dot(x.T)`.
    pub dot_n: usize,
    /// Edge of its square chunks.
    pub dot_chunk: usize,
    /// Timed runs per figure.
    pub reps: usize,
}

impl Sizes {
    /// The sizes: 20000 in 2000 chunks, dot on 4000 in 1000 chunks.
    pub fn full(reps: usize) -> Sizes {
        Sizes::with_n(20_000, 4_000, reps)
    }

    /// A smoke run: 2000 in 200 chunks, dot on 400 in 100 chunks.
    pub fn quick(reps: usize) -> Sizes {
        Sizes::with_n(2_000, 400, reps)
    }

    /// `n` in `n/10` chunks, `dot_n` in `dot_n/4` chunks.
    pub fn with_n(n: usize, dot_n: usize, reps: usize) -> Sizes {
        Sizes {
            n,
            chunk: n.div_ceil(10).max(1),
            dot_n,
            dot_chunk: dot_n.div_ceil(4).max(1),
            reps: reps.max(1),
        }
    }

    /// Bytes of one chunk row of the `n x n` array (`chunk` rows of `n` f64s).
    fn chunk_row_bytes(&self) -> u64 {
        (self.chunk.min(self.n) * self.n * 8) as u64
    }
}

// ---------------------------------------------------------------------------
// Resident memory

/// A `kB` field of `/proc/self/status` in bytes (`None` off Linux).
fn status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

fn rss_bytes() -> Option<u64> {
    status_bytes("VmRSS:")
}

/// Samples the resident memory on a thread while it lives.
struct RssSampler {
    start: u64,
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RssSampler {
    fn start() -> RssSampler {
        let start = rss_bytes().unwrap_or(0);
        let peak = Arc::new(AtomicU64::new(start));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (peak, stop) = (peak.clone(), stop.clone());
            std::thread::Builder::new()
                .name("rss-sampler".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        if let Some(rss) = rss_bytes() {
                            peak.fetch_max(rss, Ordering::Relaxed);
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                })
                .ok()
        };
        RssSampler {
            start,
            peak,
            stop,
            thread,
        }
    }

    /// Stops sampling; the highest resident memory seen above the start.
    fn finish(mut self) -> u64 {
        self.stop_thread();
        if let Some(rss) = rss_bytes() {
            self.peak.fetch_max(rss, Ordering::Relaxed);
        }
        self.peak.load(Ordering::Relaxed).saturating_sub(self.start)
    }

    fn stop_thread(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

// ---------------------------------------------------------------------------
// Runs and results

/// What a runner computed: a scalar or a vector, checked against ndarray's.
#[derive(Clone, Debug)]
enum Output {
    Scalar(f64),
    Vector(Array1<f64>),
}

impl Output {
    /// Errors unless `self` agrees with `expected` within [`RTOL`].
    fn check(&self, expected: &Output, what: &str) -> BenchResult<()> {
        let close = |a: f64, b: f64, scale: f64| (a - b).abs() <= RTOL * scale.max(1.0);
        match (self, expected) {
            (Output::Scalar(a), Output::Scalar(b)) => {
                if close(*a, *b, b.abs()) {
                    return Ok(());
                }
                Err(format!("{what}: result {a}, ndarray gives {b}").into())
            }
            (Output::Vector(a), Output::Vector(b)) => {
                if a.len() != b.len() {
                    return Err(
                        format!("{what}: {} values, ndarray gives {}", a.len(), b.len()).into(),
                    );
                }
                let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                match a.iter().zip(b).position(|(x, y)| !close(*x, *y, scale)) {
                    None => Ok(()),
                    Some(i) => {
                        Err(format!("{what}: value {i} is {}, ndarray gives {}", a[i], b[i]).into())
                    }
                }
            }
            _ => Err(format!("{what}: a scalar and a vector (bug in the benchmark)").into()),
        }
    }
}

/// One measured runner of a case.
struct Row {
    runner: String,
    median: Duration,
    /// Highest resident memory above the run's start, over the reps.
    peak: u64,
    output: Output,
}

/// Runs `f` `reps` times, timing each run and sampling memory; the median time,
/// the highest peak and the last output.
fn measure(
    reps: usize,
    runner: impl Into<String>,
    mut f: impl FnMut() -> BenchResult<Output>,
) -> BenchResult<Row> {
    let runner = runner.into();
    let mut times = Vec::with_capacity(reps);
    let mut peak = 0;
    let mut output = None;
    for _ in 0..reps {
        let sampler = RssSampler::start();
        let start = Instant::now();
        let out = f().map_err(|e| format!("{runner}: failed: {e}"))?;
        times.push(start.elapsed());
        peak = peak.max(sampler.finish());
        output = Some(out);
    }
    times.sort();
    Ok(Row {
        median: times[times.len() / 2],
        peak,
        output: output.ok_or("no run")?,
        runner,
    })
}

fn gb(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
    }
}

/// Prints a case's rows with the time of `reference` (a row's runner) as 1x.
fn print_case(title: &str, rows: &[Row], reference: &str) {
    let base = rows
        .iter()
        .find(|r| r.runner == reference)
        .map_or(f64::NAN, |r| r.median.as_secs_f64());
    println!("{title}");
    println!(
        "  {:<52} {:>10} {:>12} {:>16}",
        "runner", "median s", "speedup vs", "peak RSS above"
    );
    println!(
        "  {:<52} {:>10} {:>12} {:>16}",
        "", "", "ndarray 1t", "the run's start"
    );
    for r in rows {
        let t = r.median.as_secs_f64();
        println!(
            "  {:<52} {:>10.3} {:>11.2}x {:>16}",
            r.runner,
            t,
            base / t,
            gb(r.peak)
        );
    }
    println!();
}

fn time_of(rows: &[Row], runner: &str) -> f64 {
    rows.iter()
        .find(|r| r.runner == runner)
        .map_or(f64::NAN, |r| r.median.as_secs_f64())
}

// ---------------------------------------------------------------------------
// The work

/// `(x + x.T).sum()` on a dask array.
fn dask_tsum(x: &Array<f64>, s: &dyn Scheduler) -> BenchResult<Output> {
    let y = (x + &x.t())?.sum(None)?;
    Ok(Output::Scalar(y.compute_scalar_with(s)?))
}

/// [`dask_tsum`] with dask-array's inlining of creation blocks off: each
/// generated block is a task whose value waits for both of its readers.
fn dask_tsum_held(x: &Array<f64>, s: &dyn Scheduler) -> BenchResult<Output> {
    let y = (x + &x.t())?.sum(None)?.inline_creation(0);
    Ok(Output::Scalar(y.compute_scalar_with(s)?))
}

/// `x.dot(x.T).sum()` on a dask array.
fn dask_dot(x: &Array<f64>, s: &dyn Scheduler) -> BenchResult<Output> {
    let y = x.dot(&x.t())?.sum(None)?;
    Ok(Output::Scalar(y.compute_scalar_with(s)?))
}

/// `x.mean(axis=0)` on a dask array.
fn dask_mean(x: &Array<f64>, s: &dyn Scheduler) -> BenchResult<Output> {
    let m = x.mean(0)?.compute_with(s)?;
    Ok(Output::Vector(m.into_dimensionality::<Ix1>()?))
}

/// The runner of the generated `(x + x.T).sum()` on scheduler `name`.
fn generated_name(name: &str) -> String {
    format!("dask {name}, x generated in the graph")
}

/// Row bands of `band` rows: `(start, end)` pairs covering `0..n`.
fn bands(n: usize, band: usize) -> Vec<(usize, usize)> {
    let band = band.max(1);
    (0..n.div_ceil(band))
        .map(|i| (i * band, ((i + 1) * band).min(n)))
        .collect()
}

fn nd_tsum_temporary(x: ArrayView2<f64>) -> Output {
    Output::Scalar((&x + &x.t()).sum())
}

fn nd_tsum_zip(x: ArrayView2<f64>) -> Output {
    Output::Scalar(Zip::from(x).and(x.t()).fold(0.0, |acc, &a, &b| acc + a + b))
}

fn rayon_tsum(x: ArrayView2<f64>, band: usize) -> Output {
    let t = x.t();
    let sum = bands(x.nrows(), band)
        .into_par_iter()
        .map(|(r0, r1)| {
            Zip::from(x.slice(s![r0..r1, ..]))
                .and(t.slice(s![r0..r1, ..]))
                .fold(0.0, |acc, &a, &b| acc + a + b)
        })
        .sum();
    Output::Scalar(sum)
}

fn nd_dot(x: ArrayView2<f64>) -> Output {
    Output::Scalar(x.dot(&x.t()).sum())
}

fn rayon_dot(x: ArrayView2<f64>, band: usize) -> Output {
    let sum = bands(x.nrows(), band)
        .into_par_iter()
        .map(|(r0, r1)| x.slice(s![r0..r1, ..]).dot(&x.t()).sum())
        .sum();
    Output::Scalar(sum)
}

fn nd_mean(x: ArrayView2<f64>) -> BenchResult<Output> {
    Ok(Output::Vector(
        x.mean_axis(Axis(0)).ok_or("mean of an empty axis")?,
    ))
}

fn rayon_mean(x: ArrayView2<f64>, band: usize) -> BenchResult<Output> {
    let n = x.nrows();
    if n == 0 {
        return Err("mean of an empty axis".into());
    }
    let sum = bands(n, band)
        .into_par_iter()
        .map(|(r0, r1)| x.slice(s![r0..r1, ..]).sum_axis(Axis(0)))
        .reduce(|| Array1::zeros(x.ncols()), |a, b| a + b);
    Ok(Output::Vector(sum / n as f64))
}

/// The whole array of a dask array, as ndarray.
fn to_ndarray(x: &Array<f64>) -> BenchResult<Array2<f64>> {
    Ok(x.compute_with(&SyncScheduler::new())?
        .into_dimensionality::<Ix2>()?)
}

// ---------------------------------------------------------------------------
// The section

/// Runs every array case and prints the tables and the targets;
/// errors if any result is wrong.
pub fn run(sizes: &Sizes) -> BenchResult<()> {
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let sync = SyncScheduler::new();
    let threaded = ThreadedScheduler::with_threads(cores)?;
    let schedulers: [(String, &dyn Scheduler); 2] = [
        ("sync".to_owned(), &sync),
        (format!("threaded, {cores} threads"), &threaded),
    ];
    let reps = sizes.reps;
    let (n, chunk) = (sizes.n, sizes.chunk);
    let nbytes = (n * n * 8) as u64;
    println!(
        "\ndask-array benchmark: {cores} cores, rayon on {} threads, median of {reps} runs, results checked against ndarray",
        rayon::current_num_threads()
    );
    println!(
        "x: {n} x {n} f64 ({}) in {chunk} x {chunk} chunks ({} chunks of {}; one chunk row {}); dot on {d} x {d} in {dc} x {dc} chunks\n",
        gb(nbytes),
        n.div_ceil(chunk).pow(2),
        gb((chunk * chunk * 8) as u64),
        gb(sizes.chunk_row_bytes()),
        d = sizes.dot_n,
        dc = sizes.dot_chunk,
    );

    let x = random::random(&[n, n], chunk, SEED)?;
    println!("{x}\n");
    // 1. (x + x.T).sum() with x generated in the graph: nothing is in memory before.
    let mut generated = Vec::new();
    for (name, s) in &schedulers {
        generated.push(measure(reps, generated_name(name), || dask_tsum(&x, *s))?);
    }

    // The same with the random blocks held as tasks (dask-array's inlining
    // off), after the inlined runs so their figures are not flattered by
    // memory this one leaves in the allocator.
    generated.push(measure(
        reps,
        format!("{}, blocks held", generated_name(&schedulers[1].0)),
        || dask_tsum_held(&x, &threaded),
    )?);

    // 2. The dask cases on persisted x (held as chunks between the runs).
    let xp = x.persist_with(&threaded)?;
    let mut tsum = Vec::new();
    let mut mean = Vec::new();
    for (name, s) in &schedulers {
        tsum.push(measure(reps, format!("dask {name}, x in memory"), || {
            dask_tsum(&xp, *s)
        })?);
    }
    for (name, s) in &schedulers {
        mean.push(measure(reps, format!("dask {name}, x in memory"), || {
            dask_mean(&xp, *s)
        })?);
    }
    let xd = random::random(&[sizes.dot_n, sizes.dot_n], sizes.dot_chunk, SEED)?
        .persist_with(&threaded)?;
    let mut dot = Vec::new();
    for (name, s) in &schedulers {
        dot.push(measure(reps, format!("dask {name}, x in memory"), || {
            dask_dot(&xd, *s)
        })?);
    }

    // 3. ndarray on the same values, with the chunks dropped first.
    let xn = to_ndarray(&xp)?;
    drop(xp);
    let xdn = to_ndarray(&xd)?;
    drop(xd);
    let one = "ndarray, 1 thread";
    tsum.push(measure(
        reps,
        format!("{one}: (&x + &x.t()).sum()"),
        || Ok(nd_tsum_temporary(xn.view())),
    )?);
    let tsum_ref = format!("{one}: (&x + &x.t()).sum()");
    tsum.push(measure(
        reps,
        format!("{one}: Zip fold, no temporary"),
        || Ok(nd_tsum_zip(xn.view())),
    )?);
    tsum.push(measure(reps, "rayon: Zip fold over row bands", || {
        Ok(rayon_tsum(xn.view(), chunk))
    })?);
    mean.push(measure(reps, format!("{one}: mean_axis(Axis(0))"), || {
        nd_mean(xn.view())
    })?);
    let mean_ref = format!("{one}: mean_axis(Axis(0))");
    mean.push(measure(reps, "rayon: sum_axis over row bands", || {
        rayon_mean(xn.view(), chunk)
    })?);
    drop(xn);
    dot.push(measure(
        reps,
        format!("{one}: x.dot(&x.t()).sum()"),
        || Ok(nd_dot(xdn.view())),
    )?);
    let dot_ref = format!("{one}: x.dot(&x.t()).sum()");
    dot.push(measure(reps, "rayon: dot over row bands", || {
        Ok(rayon_dot(xdn.view(), sizes.dot_chunk))
    })?);
    drop(xdn);

    // Every result against ndarray's.
    for (rows, reference) in [(&tsum, &tsum_ref), (&mean, &mean_ref), (&dot, &dot_ref)] {
        let expected = &rows
            .iter()
            .find(|r| &r.runner == reference)
            .ok_or("no ndarray row (bug in the benchmark)")?
            .output;
        for r in rows.iter() {
            r.output.check(expected, &r.runner)?;
        }
    }
    let tsum_expected = &tsum
        .iter()
        .find(|r| r.runner == tsum_ref)
        .ok_or("no ndarray row (bug in the benchmark)")?
        .output;
    for r in &generated {
        r.output.check(tsum_expected, &r.runner)?;
    }

    let mut all_tsum = generated;
    all_tsum.extend(tsum);
    print_case(
        &format!("(x + x.T).sum(), x {n} x {n} in {chunk} x {chunk} chunks"),
        &all_tsum,
        &tsum_ref,
    );
    print_case(
        &format!("x.mean(axis=0), x {n} x {n} in {chunk} x {chunk} chunks"),
        &mean,
        &mean_ref,
    );
    print_case(
        &format!(
            "x.dot(x.T).sum(), x {d} x {d} in {dc} x {dc} chunks",
            d = sizes.dot_n,
            dc = sizes.dot_chunk
        ),
        &dot,
        &dot_ref,
    );

    let threaded_name = format!("dask threaded, {cores} threads");
    let speedup = time_of(&all_tsum, &tsum_ref)
        / time_of(&all_tsum, &format!("{threaded_name}, x in memory"));
    let peak_of = |runner: String| {
        all_tsum
            .iter()
            .find(|r| r.runner == runner)
            .map_or(0, |r| r.peak)
    };
    let generated_peak = peak_of(generated_name(&schedulers[1].0));
    let held_peak = peak_of(format!("{}, blocks held", generated_name(&schedulers[1].0)));
    let rows = |bytes: u64| bytes as f64 / sizes.chunk_row_bytes() as f64;
    let peak_rows = rows(generated_peak);
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!("targets (issue 4):");
    println!(
        "  (x + x.T).sum(), threaded (x in memory) vs ndarray on 1 thread >= {SPEEDUP_TARGET}x: {speedup:.2}x: {}",
        verdict(speedup >= SPEEDUP_TARGET)
    );
    println!(
        "  peak memory of the generated (x + x.T).sum(), threaded < {PEAK_TARGET_ROWS} chunk rows ({}): {} = {peak_rows:.2} rows: {}",
        gb((PEAK_TARGET_ROWS * sizes.chunk_row_bytes() as f64) as u64),
        gb(generated_peak),
        verdict(peak_rows < PEAK_TARGET_ROWS)
    );
    println!(
        "  (the same with the random blocks held, inline_creation(0): {} = {:.2} rows)",
        gb(held_peak),
        rows(held_peak)
    );
    if let Some(hwm) = status_bytes("VmHWM:") {
        println!(
            "  (peak resident memory of the whole process so far: {})",
            gb(hwm)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole section on tiny, irregular sizes: every runner's result is
    /// checked against ndarray inside `run`, so this fails on a wrong result.
    #[test]
    fn section_runs_and_checks_results() {
        let sizes = Sizes {
            n: 37,
            chunk: 10,
            dot_n: 19,
            dot_chunk: 6,
            reps: 1,
        };
        run(&sizes).unwrap();
    }

    #[test]
    fn baselines_agree_with_plain_loops() {
        let n = 13;
        let x = Array2::from_shape_fn((n, n), |(i, j)| (i * 31 + j * 7) as f64 / 10.0);
        let mut tsum = 0.0;
        let mut col = vec![0.0; n];
        let mut dot = 0.0;
        for i in 0..n {
            for j in 0..n {
                tsum += x[[i, j]] + x[[j, i]];
                col[j] += x[[i, j]];
                dot += (0..n).map(|k| x[[i, k]] * x[[j, k]]).sum::<f64>();
            }
        }
        let mean = Output::Vector(Array1::from(col).mapv(|c| c / n as f64));
        for band in [1, 4, 13, 20] {
            let v = x.view();
            for got in [nd_tsum_temporary(v), nd_tsum_zip(v), rayon_tsum(v, band)] {
                got.check(&Output::Scalar(tsum), "tsum").unwrap();
            }
            for got in [nd_dot(v), rayon_dot(v, band)] {
                got.check(&Output::Scalar(dot), "dot").unwrap();
            }
            for got in [nd_mean(v).unwrap(), rayon_mean(v, band).unwrap()] {
                got.check(&mean, "mean").unwrap();
            }
        }
        // The check itself rejects a wrong value.
        assert!(Output::Scalar(tsum + 1.0)
            .check(&Output::Scalar(tsum), "tsum")
            .is_err());
    }

    #[test]
    fn bands_cover_the_rows() {
        assert_eq!(bands(10, 4), vec![(0, 4), (4, 8), (8, 10)]);
        assert_eq!(bands(0, 4), vec![]);
        assert_eq!(bands(3, 0), vec![(0, 1), (1, 2), (2, 3)]);
    }
}
