//! Bags on `dask worker` processes: the built-in word count
//! (`read_text(..).flat_map(words).frequencies()` and `.count()`, also over a
//! materialized bag of lines) is made of registered ops the workers rebuild;
//! text blocks and partial counts cross processes by their codecs. Each
//! result is compared with `str::split_whitespace` on the whole text in this
//! process. Closures (`map`, `topk`'s key) are refused up front.

use std::collections::BTreeMap;

use dask::bag::{read_text, words, Bag};
use dask::core::Collection;

use super::dataframe_processes::TempDir;
use super::processes::cluster_of_processes;

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
    drop(client);
    drop(procs);
}
