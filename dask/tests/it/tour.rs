//! The README's tour (`cargo run --example tour`), run with `--small`: every
//! step prints its result, checked here against what plain Rust says it must be.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn the_tour_runs_every_step_on_small_data() {
    // `cargo test` builds the examples next to the test binaries' directory.
    let exe = std::env::current_exe().unwrap();
    let tour = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("examples").join("tour"))
        .unwrap();
    if !tour.exists() {
        println!(
            "skipped: {} is not built (`cargo test` builds examples; `--test it` alone does not)",
            tour.display()
        );
        return;
    }
    let mut child = Command::new(&tour)
        .arg("--small")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        out.read_to_string(&mut text).ok();
        text
    });
    let deadline = Instant::now() + Duration::from_secs(600);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the tour did not finish in 10 minutes");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = reader.join().unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).ok();
    assert!(status.success(), "the tour failed:\n{text}\n{err}");
    // Shutting its own cluster down is not a lost scheduler: no reconnecting.
    assert!(
        !err.contains("lost the scheduler"),
        "the tour's shutdown made a client try to reconnect:\n{err}"
    );
    let line = |tag: &str| -> String {
        text.lines()
            .find(|l| l.starts_with(tag))
            .unwrap_or_else(|| panic!("no `{tag}` line in:\n{text}"))
            .to_owned()
    };
    assert!(line("Client(scheduler=tcp://127.0.0.1:").contains("dashboard=http://"));
    assert!(line("[client] dashboard at http://").ends_with("/status"));
    assert!(line("[submit]").starts_with("[submit] inc(9) = 10, status now Finished"));
    let matrix = line("[matrix]");
    assert!(
        matrix.contains("1000x1000") && matrix.matches("[1000, 1000]").count() == 2,
        "{matrix}"
    );
    assert!(line("[array] (x + x.T).sum()").contains("on the cluster"));
    assert_eq!(
        line("[dataframe] npartitions="),
        "[dataframe] npartitions=50"
    );
    // The sample of two rows saw whole fares and tolls: the error's table,
    // then its fix, then the sum with the fix.
    assert!(text.contains("Mismatched dtypes found"), "{text}");
    assert!(
        text.contains("[dtype] fix: .dtype(\"tolls_amount\", Float64)"),
        "{text}"
    );
    assert!(line("[dtype] with the fix, tolls_amount sums to").contains("Float64("));
    let vendors = line("[dataframe] VendorID.unique()");
    // Vendors 1 and 2, and the missing ids of the last rows.
    for v in ["\"null\"", "\"1\"", "\"2\""] {
        assert!(vendors.contains(v), "{vendors}");
    }
    // 2,000 lines of "the quick fox N jumps over the lazy dog M": "the" twice each.
    assert!(line("[bag] top 3 words:").contains("(\"the\", 4000)"));
    assert_eq!(
        line("[coordination] 50 tasks"),
        "[coordination] 50 tasks incremented the counter under a Lock: 50"
    );
    let squares: Vec<i64> = (0..10).map(|i| i * i).collect();
    assert_eq!(
        line("[coordination] squares"),
        format!("[coordination] squares from the queue: {squares:?}")
    );
    let increments: Vec<i64> = (1..=5).collect();
    assert_eq!(
        line("[actor]"),
        format!("[actor] 5 increments saw {increments:?}; the counter is at 5")
    );
    line("[done]");
}
