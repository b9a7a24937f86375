//! Bags on `dask worker` processes: the built-in word count
//! (`read_text(..).flat_map(words).frequencies()` and `.count()`, also over a
//! materialized bag of lines) is made of registered ops the workers rebuild;
//! text blocks and partial counts cross processes by their codecs. Each
//! result is compared with `str::split_whitespace` on the whole text in this
//! process. Closures (`map`, `topk`'s key) are refused up front.
//!
//! Pipelines of functions registered with `register_bag_fn!` run on worker
//! processes that link them: this test binary run again as a worker.

use std::collections::BTreeMap;

use dask::bag::{read_text, register_bag_fn, words, Bag};
use dask::core::Collection;
use dask::distributed::Client;

use super::dataframe_processes::TempDir;
use super::processes::{cluster_of_processes, spawn, worker_of_this_binary, Procs};

fn oracle<'a>(texts: impl IntoIterator<Item = &'a str>) -> Vec<(String, usize)> {
    let mut counts = BTreeMap::<String, usize>::new();
    for t in texts {
        for w in t.split_whitespace() {
            *counts.entry(w.to_owned()).or_default() += 1;
        }
    }
    counts.into_iter().collect()
}

fn sorted(mut v: Vec<(String, usize)>) -> Vec<(String, usize)> {
    v.sort();
    v
}

#[test]
fn word_count_on_worker_processes() {
    let dir = TempDir::new("bag-words");
    let mut texts = Vec::new();
    for f in 0..3 {
        let mut text = String::new();
        for i in 0..2000u64 {
            let w = (i * 7919 + f) % 101;
            text.push_str(&format!("w{w} é{}\u{a0}x{}\r\n\n", w % 7, i % 3));
        }
        std::fs::write(dir.0.join(format!("part-{f}.txt")), &text).unwrap();
        texts.push(text);
    }
    let pattern = dir.0.join("part-*.txt");
    let pattern = pattern.to_str().unwrap();
    let want = oracle(texts.iter().map(String::as_str));
    let nwords: usize = want.iter().map(|(_, n)| n).sum();

    let (procs, client) = cluster_of_processes(2);
    // Blocks of about 10 kB: many partitions, a tree of merges.
    let w = read_text(pattern, Some(10_000)).unwrap().flat_map(words);
    assert!(w.npartitions() > 8);
    assert_eq!(sorted(w.frequencies().compute_with(&client).unwrap()), want);
    assert_eq!(w.count().compute_with(&client).unwrap(), nwords);

    // A materialized bag of lines (its partitions travel as values).
    let lines: Vec<String> = texts
        .iter()
        .flat_map(|t| t.lines())
        .map(str::to_owned)
        .collect();
    let b = Bag::from_sequence(lines, 5).unwrap().flat_map(words);
    assert_eq!(sorted(b.frequencies().compute_with(&client).unwrap()), want);

    // Closures stay in-process: refused before anything is sent.
    let upper = read_text(pattern, None).unwrap().map(|l| l.to_uppercase());
    let err = upper
        .flat_map(words)
        .frequencies()
        .compute_with(&client)
        .unwrap_err();
    assert!(
        matches!(err, dask::core::Error::OpNotRegistered { .. }),
        "{err}"
    );
    let err = w
        .frequencies()
        .topk(3, |(_, n)| *n)
        .unwrap()
        .compute_with(&client)
        .unwrap_err();
    assert!(
        matches!(err, dask::core::Error::OpNotRegistered { .. }),
        "{err}"
    );
    // The `dask` binary's workers do not link this test's functions: the
    // task fails on the worker, naming the step and the fix.
    let err = Bag::from_sequence(vec![1i64, 2], 1)
        .unwrap()
        .map(cube)
        .compute_with(&client)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cube") && err.contains("register_bag_fn"),
        "{err}"
    );
    drop(client);
    drop(procs);
}

fn cube(x: i64) -> i64 {
    x * x * x
}
fn is_odd(x: &i64) -> bool {
    x % 2 != 0
}
fn digits(x: i64) -> Vec<u8> {
    x.unsigned_abs().to_string().into_bytes()
}
fn line_len(line: String) -> u64 {
    line.chars().count() as u64
}
register_bag_fn!(map cube);
register_bag_fn!(filter is_odd);
register_bag_fn!(flat_map digits);
register_bag_fn!(map line_len);

#[test]
fn registered_bag_steps_run_on_worker_processes() {
    let (scheduler, addr) = spawn(&["scheduler", "--port", "0"], "scheduler at ");
    let mut procs = Procs(vec![scheduler]);
    for _ in 0..2 {
        procs.0.push(worker_of_this_binary(&addr));
    }
    let client = Client::connect(&addr).unwrap();

    // A materialized bag through map, filter and flat_map, against std.
    let data: Vec<i64> = (-300..300).map(|i| i * 7 % 101).collect();
    let bag = Bag::from_sequence(data.clone(), 7)
        .unwrap()
        .map(cube)
        .filter(is_odd)
        .flat_map(digits);
    let oracle: Vec<u8> = data
        .iter()
        .map(|&x| cube(x))
        .filter(is_odd)
        .flat_map(digits)
        .collect();
    assert_eq!(bag.compute_with(&client).unwrap(), oracle);

    // Persisted on the workers, then reused by a second pipeline.
    let cubes = Bag::from_sequence(data.clone(), 5).unwrap().map(cube);
    let kept = cubes.persist_with(&client).unwrap();
    let odd = kept.filter(is_odd);
    let oracle: Vec<i64> = data.iter().map(|&x| cube(x)).filter(is_odd).collect();
    assert_eq!(odd.compute_with(&client).unwrap(), oracle);

    // read_text blocks, read by the workers.
    let dir = TempDir::new("bag-steps");
    let text: String = (0..500)
        .map(|i| format!("line {i} é{}\n", "x".repeat(i % 13)))
        .collect();
    let path = dir.0.join("lines.txt");
    std::fs::write(&path, &text).unwrap();
    let lens = read_text(path.to_str().unwrap(), Some(1000))
        .unwrap()
        .map(line_len);
    assert!(lens.npartitions() > 4);
    let oracle: Vec<u64> = text.lines().map(|l| line_len(l.to_owned())).collect();
    assert_eq!(lens.compute_with(&client).unwrap(), oracle);

    // A closure anywhere in the chain is refused before anything is sent.
    let err = Bag::from_sequence(data, 3)
        .unwrap()
        .map(cube)
        .map(|x| x + 1)
        .compute_with(&client)
        .unwrap_err();
    assert!(
        matches!(err, dask::core::Error::OpNotRegistered { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("register_bag_fn"), "{err}");
    drop(client);
    drop(procs);
}
