//! The small examples of `dask/examples` (one per collection, one per
//! scheduler choice): each runs to the end, checks its own results against an
//! oracle (ndarray, polars, std iterators, the sync scheduler) and prints
//! `ok: NAME` last. Run here as `cargo test` builds them.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The example binary `name`, which `cargo test` builds next to the test
/// binaries' directory (`target/debug/examples/NAME`), if it is there.
fn example(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe
        .parent()?
        .parent()?
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    path.exists().then_some(path)
}

/// Runs example `name` with a time limit and checks it exits 0 with
/// `ok: NAME` as its last line.
fn run(name: &str) {
    let Some(exe) = example(name) else {
        println!(
            "skipped: example `{name}` is not built (`cargo test` builds examples; `--test it` alone does not)"
        );
        return;
    };
    let mut child = Command::new(&exe)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
    // Read both pipes on threads so a full pipe never blocks the example.
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        out.read_to_string(&mut text).ok();
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        err.read_to_string(&mut text).ok();
        text
    });
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the example") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("example `{name}` did not finish in 5 minutes");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (out, err) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    assert!(
        status.success(),
        "example `{name}` failed ({status}):\n{out}\n{err}"
    );
    let last = out.lines().last().unwrap_or("");
    assert_eq!(
        last,
        format!("ok: {name}"),
        "example `{name}` did not end with `ok: {name}`:\n{out}\n{err}"
    );
}

#[test]
fn array_example_matches_ndarray() {
    run("array");
}

#[test]
fn dataframe_example_matches_polars() {
    run("dataframe");
}

#[test]
fn bag_example_matches_std_iterators() {
    run("bag");
}

#[test]
fn sync_scheduler_example_runs() {
    run("scheduler_sync");
}

#[test]
fn threaded_scheduler_example_runs() {
    run("scheduler_threaded");
}

#[test]
fn distributed_scheduler_example_runs() {
    run("scheduler_distributed");
}
