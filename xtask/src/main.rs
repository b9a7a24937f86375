//! Developer tasks for dask-rs, run as `cargo xtask <task>` (matklad's
//! cargo-xtask convention: plain Rust instead of shell scripts or make; the
//! alias lives in `.cargo/config.toml`).
//!
//! - `cargo xtask ci`: exactly what CI runs (`.ci/run` calls it), in order,
//!   stopping at the first failure: `cargo fmt --all -- --check`,
//!   `cargo clippy --workspace --all-targets -- -D warnings`, then the README's
//!   test command `cargo test --workspace`. Each step prints its name and time.
//! - `cargo xtask bench [--quick] [--reps N] [--only SECTION] [--array-n N]`:
//!   the scheduler, distributed and array benchmarks
//!   (`cargo run --release -p dask-bench -- ...`), see `dask-bench`.
//! - `cargo xtask gen-data taxi [--rows N] [--seed S] [--out PATH]`: a seeded
//!   synthetic NYC taxi CSV (see [`taxi`]).
//! - `cargo xtask gen-data text [--mb N] [--files F] [--seed S] [--out DIR]`:
//!   the seeded Zipf word corpus of the bag word-count benchmark (see [`text`]).
//! - `cargo xtask fuzz [--secs N] [--seed S]`: the wire fuzzer of
//!   dask-distributed (frames, headers, task specs) for a time budget.
//! - `cargo xtask help`: the list of tasks.
//!
//! Every task runs from the workspace root, whatever the current directory.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

mod taxi;
mod text;

const USAGE: &str = "usage: cargo xtask <task> [args]

tasks:
  ci                        what CI runs, stopping at the first failure:
                              cargo fmt --all -- --check
                              cargo clippy --workspace --all-targets -- -D warnings
                              cargo test --workspace
  bench [--quick] [--reps N] [--only schedulers|distributed|array] [--array-n N]
                            the benchmarks (release build): schedulers,
                            distributed, dask-array next to ndarray:
                            cargo run --release -p dask-bench -- [args];
                            --quick is a smoke run on smaller sizes
  gen-data taxi [--rows N] [--seed S] [--out PATH]
                            a seeded synthetic yellow_tripdata_2020-01.csv
                            (default 6405008 rows, ~590 MB, in data/)
  gen-data text [--mb N] [--files F] [--seed S] [--out DIR]
                            a seeded Zipf word corpus, F files (default
                            200 MB in 16 files, in data/text-200mb/)
  fuzz [--secs N] [--seed S]
                            fuzz the wire decoders for N seconds (default 60):
                            cargo run --release -p dask-distributed --example fuzz
  help                      this text";

/// The tasks, for error messages.
const TASKS: &[&str] = &["ci", "bench", "gen-data", "fuzz", "help"];

/// One CI step: a name and the cargo arguments that run it.
struct Step {
    name: &'static str,
    args: &'static [&'static str],
}

/// What `cargo xtask ci` runs, in order. The last step is the README's test
/// command; keep the two in sync.
const CI_STEPS: &[Step] = &[
    Step {
        name: "format",
        args: &["fmt", "--all", "--", "--check"],
    },
    Step {
        name: "lint",
        args: &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    },
    Step {
        name: "test",
        args: &["test", "--workspace"],
    },
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the context chain on one line, without a backtrace.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<()> {
    let (task, rest) = match args.split_first() {
        Some((task, rest)) => (task.as_str(), rest),
        None => ("help", &[][..]),
    };
    match task {
        "ci" => {
            if let Some(extra) = rest.first() {
                bail!("`cargo xtask ci` takes no arguments, got `{extra}`");
            }
            ci()
        }
        "bench" => bench(rest),
        "gen-data" => gen_data(rest),
        "fuzz" => fuzz(rest),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!(
            "unknown task `{other}`; the tasks are: {}\n\n{USAGE}",
            TASKS.join(", ")
        ),
    }
}

/// The workspace root: xtask lives one level below it.
fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// The cargo that runs us (`cargo xtask` sets `CARGO`), else `cargo` on PATH.
fn cargo_bin() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// Runs `cargo ARGS` from the workspace root, printing the step's name, command
/// and time; fails if it fails.
fn cargo(step: &str, args: &[&str]) -> Result<Duration> {
    let command = format!("cargo {}", args.join(" "));
    println!("==> {step}: {command}");
    let start = Instant::now();
    let mut child = Command::new(cargo_bin());
    child.args(args).current_dir(workspace_root());
    clear_cargo_run_env(&mut child);
    let status = child
        .status()
        .with_context(|| format!("step `{step}`: could not start `{command}`"))?;
    let elapsed = start.elapsed();
    if status.success() {
        println!("<== {step}: ok in {}", secs(elapsed));
        Ok(elapsed)
    } else {
        println!("<== {step}: FAILED in {}", secs(elapsed));
        bail!(
            "step `{step}` failed ({status}): `{command}` reports why above; run it alone to retry"
        )
    }
}

/// Removes the variables `cargo run` set for us (`CARGO_MANIFEST_DIR`,
/// `CARGO_PKG_*`, ...) from a nested cargo's environment. Some build scripts
/// (ring's, under polars) rerun when these change, and everything above them
/// rebuilds: a step run here must see the environment of a plain shell, so
/// that `cargo xtask ci` and `cargo test` share one cache, at any checkout path.
fn clear_cargo_run_env(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        let set_by_cargo_run = name == "CARGO_MANIFEST_DIR"
            || name == "CARGO_MANIFEST_PATH"
            || name == "CARGO_MANIFEST_LINKS"
            || name == "CARGO_CRATE_NAME"
            || name == "CARGO_BIN_NAME"
            || name == "CARGO_PRIMARY_PACKAGE"
            || name == "OUT_DIR"
            || name.starts_with("CARGO_PKG_");
        if set_by_cargo_run {
            command.env_remove(name);
        }
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn ci() -> Result<()> {
    let start = Instant::now();
    let mut done = Vec::new();
    for step in CI_STEPS {
        match cargo(step.name, step.args) {
            Ok(t) => done.push((step.name, t)),
            Err(e) => {
                let skipped: Vec<&str> =
                    CI_STEPS[done.len() + 1..].iter().map(|s| s.name).collect();
                if !skipped.is_empty() {
                    eprintln!("ci: not run after the failure: {}", skipped.join(", "));
                }
                return Err(e.context("ci failed"));
            }
        }
    }
    let summary: Vec<String> = done
        .iter()
        .map(|(name, t)| format!("{name} {}", secs(*t)))
        .collect();
    println!(
        "ci passed in {} ({})",
        secs(start.elapsed()),
        summary.join(", ")
    );
    Ok(())
}

fn bench(args: &[String]) -> Result<()> {
    let mut cmd = vec!["run", "--release", "--package", "dask-bench", "--"];
    cmd.extend(args.iter().map(String::as_str));
    cargo("bench", &cmd).map(|_| ())
}

fn gen_data(args: &[String]) -> Result<()> {
    match args.split_first() {
        Some((kind, rest)) if kind == "taxi" => taxi::run(rest, &workspace_root()),
        Some((kind, rest)) if kind == "text" => text::run(rest, &workspace_root()),
        Some((kind, _)) => {
            bail!("unknown data set `{kind}`; the data sets are: taxi, text\n\n{USAGE}")
        }
        None => bail!("`cargo xtask gen-data` needs a data set: taxi or text\n\n{USAGE}"),
    }
}

fn fuzz(args: &[String]) -> Result<()> {
    let mut cmd = vec![
        "run",
        "--release",
        "--package",
        "dask-distributed",
        "--example",
        "fuzz",
        "--",
    ];
    cmd.extend(args.iter().map(String::as_str));
    cargo("fuzz", &cmd).map(|_| ())
}
