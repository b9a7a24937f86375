//! The seed's array computation, `(x + x.T).sum()` on a seeded random matrix,
//! timed three ways in one run: plain ndarray on the whole array (one thread),
//! the threaded scheduler, and a scheduler plus worker *processes* started with
//! the `dask` binary (every chunk task a registered op, every block moving
//! between processes by its codec).
//!
//! ```text
//! cargo build --release -p dask --bin dask --example array_processes_bench
//! target/release/examples/array_processes_bench [N] [CHUNK] [WORKERS]
//! ```
//!
//! Defaults: N = 10000, CHUNK = 1000, WORKERS = 2 (one thread each). The `dask`
//! binary is looked up next to the examples directory (`target/release/dask`),
//! or at `$DASK_BIN`. Results are checked against each other before timings
//! are printed.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use dask::array::{random, Collection};
use dask::distributed::Client;
use dask::ThreadedScheduler;

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

/// Kills the processes it holds when dropped.
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn dask_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("DASK_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(|examples| examples.parent())
        .ok_or("cannot locate the target directory")?;
    let bin = dir.join("dask");
    if !bin.exists() {
        return Err(format!(
            "{} not found: build it with `cargo build --release -p dask --bin dask` or set DASK_BIN",
            bin.display()
        )
        .into());
    }
    Ok(bin)
}

fn spawn(bin: &PathBuf, args: &[&str], prefix: &str) -> Result<(Child, String)> {
    let mut child = Command::new(bin)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("starting {}: {e}", bin.display()))?;
    let stdout = child.stdout.take().ok_or("no piped stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let addr = line
        .trim()
        .strip_prefix(prefix)
        .ok_or_else(|| format!("unexpected output {line:?}"))?
        .to_owned();
    Ok((child, addr))
}

fn arg(i: usize, default: usize) -> Result<usize> {
    std::env::args().nth(i).map_or(Ok(default), |s| {
        s.parse()
            .map_err(|e| format!("arguments: [N] [CHUNK] [WORKERS] ({s:?}: {e})").into())
    })
}

fn main() -> Result<()> {
    let (n, chunk, workers) = (arg(1, 10_000)?, arg(2, 1000)?, arg(3, 2)?);
    let x = random::random(&[n, n], chunk, 42)?;
    let total = (&x + &x.t())?.sum(None)?;
    println!("{total}");

    let threaded = ThreadedScheduler::new();
    let t = Instant::now();
    let s_threaded = total.compute_scalar_with(&threaded)?;
    let threaded_s = t.elapsed().as_secs_f64();

    let bin = dask_binary()?;
    let (scheduler, addr) = spawn(&bin, &["scheduler", "--port", "0"], "scheduler at ")?;
    let mut procs = Procs(vec![scheduler]);
    for _ in 0..workers {
        let (w, _) = spawn(&bin, &["worker", &addr, "--nthreads", "1"], "worker at ")?;
        procs.0.push(w);
    }
    let client = Client::connect(&addr)?;
    let t = Instant::now();
    let s_procs = total.compute_scalar_with(&client)?;
    let procs_s = t.elapsed().as_secs_f64();
    drop(client);
    drop(procs);

    // The same matrix as one ndarray (not timed), then NumPy-style on one thread.
    let a = x.compute_with(&threaded)?;
    let t = Instant::now();
    let s_ndarray = (&a + &a.t()).sum();
    let ndarray_s = t.elapsed().as_secs_f64();

    for (name, s) in [("threaded", s_threaded), ("processes", s_procs)] {
        let rel = (s - s_ndarray).abs() / s_ndarray.abs().max(1.0);
        if rel > 1e-9 {
            return Err(format!(
                "{name} gave {s}, ndarray {s_ndarray} (relative difference {rel:e})"
            )
            .into());
        }
    }
    println!("(x + x.T).sum() on {n}x{n} f64, chunks {chunk}: results agree (rel. 1e-9)");
    println!("  ndarray, whole array, 1 thread   {ndarray_s:8.3} s   1.00x");
    println!(
        "  threaded scheduler               {threaded_s:8.3} s   {:.2}x",
        ndarray_s / threaded_s
    );
    println!(
        "  {workers} worker processes x 1 thread   {procs_s:8.3} s   {:.2}x",
        ndarray_s / procs_s
    );
    Ok(())
}
