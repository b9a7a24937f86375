//! Word count benchmark: `read_text(..).flat_map(split_whitespace).frequencies().topk(10)`
//! on the sync and threaded schedulers, next to single-threaded `HashMap` loops
//! over the same files in the same run: the loop most people write (the
//! baseline of the ratios), a tuned one, and a
//! fast loop (whole files, borrowed words, FxHash).
//!
//! ```text
//! cargo bench -p dask-bag --bench wordcount -- --mb 50
//! ```
//!
//! The corpus (seeded, Zipf-distributed words, 16 files) is the one
//! `cargo xtask gen-data text --mb N` writes to `data/text-{N}mb/`; the bench
//! writes it there itself when it is missing. Prints times (best of `--reps`, default
//! 3) and ratios; checks that every variant finds the loop's top 10.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dask_bag::{read_text, words};
use dask_core::{Collection, Scheduler};
use dask_sync_scheduler::SyncScheduler;
use dask_threaded::ThreadedScheduler;

#[path = "../../xtask/src/text/generate.rs"]
mod corpus;

type Top = Vec<(String, usize)>;

fn top10(counts: impl IntoIterator<Item = (String, usize)>) -> Top {
    let mut all: Top = counts.into_iter().collect();
    all.sort_unstable_by_key(|(w, c)| (Reverse(*c), w.clone()));
    all.truncate(10);
    all
}

/// The loop most people write: `entry(word.to_owned())`.
fn loop_entry(paths: &[PathBuf]) -> Top {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for p in paths {
        let f = std::io::BufReader::new(std::fs::File::open(p).unwrap());
        for line in f.lines() {
            for w in line.unwrap().split_whitespace() {
                *counts.entry(w.to_owned()).or_insert(0) += 1;
            }
        }
    }
    top10(counts)
}

/// A tuned loop: one reused line buffer, no allocation for known words.
fn loop_tuned(paths: &[PathBuf]) -> Top {
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut line = String::new();
    for p in paths {
        let mut f = std::io::BufReader::new(std::fs::File::open(p).unwrap());
        loop {
            line.clear();
            if f.read_line(&mut line).unwrap() == 0 {
                break;
            }
            for w in line.split_whitespace() {
                match counts.get_mut(w) {
                    Some(c) => *c += 1,
                    None => {
                        counts.insert(w.to_owned(), 1);
                    }
                }
            }
        }
    }
    top10(counts)
}

/// A fast loop: each file read whole, words borrowed from it, FxHash, a
/// `String` only for a new word. The bag's fused path does that and more (it
/// keys short words by their packed bytes, see `dask_bag::words`), so its
/// sync line against this one is that gain net of framework overhead.
fn loop_fused(paths: &[PathBuf]) -> Top {
    let mut counts: rustc_hash::FxHashMap<String, usize> = Default::default();
    for p in paths {
        let bytes = std::fs::read(p).unwrap();
        for w in std::str::from_utf8(&bytes).unwrap().split_whitespace() {
            match counts.get_mut(w) {
                Some(c) => *c += 1,
                None => {
                    counts.insert(w.to_owned(), 1);
                }
            }
        }
    }
    top10(counts)
}

fn bag(pattern: &str, s: &dyn Scheduler) -> Top {
    read_text(pattern, None)
        .unwrap()
        .flat_map(words)
        .frequencies()
        .topk(10, |(w, c)| (*c, Reverse(w.clone())))
        .unwrap()
        .compute_with(s)
        .unwrap()
}

fn best(reps: usize, mut f: impl FnMut() -> Top) -> (Duration, Top) {
    let mut best = Duration::MAX;
    let mut out = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        out = f();
        best = best.min(t.elapsed());
    }
    (best, out)
}

fn main() {
    let mut mb = 200usize;
    let mut reps = 3usize;
    let mut only: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--mb" => {
                mb = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--mb takes a number")
            }
            "--reps" => {
                reps = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--reps takes a number")
            }
            "--only" => only = args.next(),
            "--bench" => {}
            n => match n.parse() {
                Ok(n) => mb = n,
                Err(_) => panic!("unknown argument `{n}`: use [--mb] N [--reps R]"),
            },
        }
    }
    // The corpus `cargo xtask gen-data text --mb N` writes (same files, same seed).
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../data/text-{mb}mb"));
    let t = Instant::now();
    let paths = corpus::generate(&dir, mb, 16, 42).expect("writing the corpus");
    println!(
        "corpus: {} ({} files, {mb} MB) ready in {:.2?}",
        dir.display(),
        paths.len(),
        t.elapsed()
    );
    let pattern = dir.join("part-*.txt").to_str().unwrap().to_owned();

    let threaded = ThreadedScheduler::new();
    if let Some(only) = only {
        // One variant alone, for profilers (`perf stat`, `perf record`).
        let t = Instant::now();
        let top = match only.as_str() {
            "loop" => loop_entry(&paths),
            "tuned" => loop_tuned(&paths),
            "fused" => loop_fused(&paths),
            "sync" => bag(&pattern, &SyncScheduler::new()),
            "threaded" => bag(&pattern, &threaded),
            other => panic!("--only takes loop, tuned, fused, sync or threaded, not `{other}`"),
        };
        println!("{only}: {:.3?}, top {:?}", t.elapsed(), &top[..1]);
        return;
    }
    let sync = SyncScheduler::new();
    let _ = loop_tuned(&paths); // warm the page cache
    let (t_entry, top_entry) = best(reps, || loop_entry(&paths));
    let (t_tuned, top_tuned) = best(reps, || loop_tuned(&paths));
    let (t_fused, top_fused) = best(reps, || loop_fused(&paths));
    let (t_sync, top_sync) = best(reps, || bag(&pattern, &sync));
    let (t_thr, top_thr) = best(reps, || bag(&pattern, &threaded));
    assert_eq!(top_tuned, top_entry, "the loops disagree");
    assert_eq!(top_fused, top_entry, "the loops disagree");
    assert_eq!(
        top_sync, top_entry,
        "bag (sync) top 10 differs from the loop's"
    );
    assert_eq!(
        top_thr, top_entry,
        "bag (threaded) top 10 differs from the loop's"
    );

    let mbps = |d: Duration| mb as f64 / d.as_secs_f64();
    println!(
        "best of {reps}, {} cores, threaded on {} threads",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        threaded.num_threads()
    );
    for (name, d) in [
        ("loop (entry + to_owned)", t_entry),
        ("loop (tuned, get_mut)", t_tuned),
        ("loop (read whole, fx)", t_fused),
        ("bag, sync scheduler", t_sync),
        ("bag, threaded scheduler", t_thr),
    ] {
        println!(
            "{name:<26} {:>9.3} s {:>8.1} MB/s   x{:.2} vs loop   x{:.2} vs tuned   x{:.2} vs fast loop",
            d.as_secs_f64(),
            mbps(d),
            t_entry.as_secs_f64() / d.as_secs_f64(),
            t_tuned.as_secs_f64() / d.as_secs_f64(),
            t_fused.as_secs_f64() / d.as_secs_f64(),
        );
    }
    println!("top 10 (all variants agree): {top_entry:?}");
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        // Ratios across threads mean little on a machine busy with other work.
        println!("load average at the end: {}", load.trim());
    }
}
