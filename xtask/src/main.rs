//! Developer tasks for dask-rs, run as `cargo xtask <task>` (matklad's
//! cargo-xtask convention; the alias lives in `.cargo/config.toml`).
//!
//! - `cargo xtask ci`: what CI runs, in order, stopping at the first failure:
//!   `cargo fmt --check`, `cargo clippy -D warnings`, `cargo test --workspace`.
//! - `cargo xtask bench [--quick]`: the scheduler benchmarks (release build).

use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  ci               cargo fmt --check, cargo clippy -D warnings, cargo test --workspace
  bench [--quick]  scheduler benchmarks (release build); --quick for a smoke run
  help             this text";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("bench") => bench(&args[1..]),
        Some("help") | Some("--help") | Some("-h") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown task `{other}`\n\n{USAGE}"),
    }
}

/// Runs `cargo ARGS`, printing the step and its time; fails if it fails.
fn cargo(step: &str, args: &[&str]) -> Result<()> {
    println!("==> {step}: cargo {}", args.join(" "));
    let start = Instant::now();
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .status()
        .with_context(|| format!("could not run cargo for `{step}`"))?;
    println!("<== {step}: {:.1} s", start.elapsed().as_secs_f64());
    if !status.success() {
        bail!(
            "`{step}` failed ({status}): run `cargo {}` to see why",
            args.join(" ")
        );
    }
    Ok(())
}

fn ci() -> Result<()> {
    let start = Instant::now();
    cargo("format", &["fmt", "--all", "--", "--check"])?;
    cargo(
        "lint",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    cargo("test", &["test", "--workspace"])?;
    println!("ci passed in {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}

fn bench(args: &[String]) -> Result<()> {
    let mut cmd = vec!["run", "--release", "--package", "dask-bench", "--"];
    cmd.extend(args.iter().map(String::as_str));
    cargo("bench", &cmd)
}
