//! dask.bag in a few steps: a partitioned collection of plain Rust values,
//! processed like an iterator, in parallel. Each result is checked against
//! the same pipeline written with std iterators.
//!
//! Shows: from_sequence, map / filter / fold, read_text of generated text
//! files, frequencies and topk, groupby and foldby, and to_dataframe.
//!
//! Run: `cargo run --example bag`

use std::collections::HashMap;

use dask::bag::{read_text, words, Bag};
use dask::dataframe::polars::prelude::df;
use dask::prelude::*;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// A line of made-up log text, seeded by `i`.
fn log_line(i: u64) -> String {
    let level = ["INFO", "INFO", "WARN", "ERROR"][(i % 4) as usize];
    let user = ["ana", "bo", "cy", "dee", "eli"][(i * 7 % 5) as usize];
    format!(
        "{level} user {user} request {} took {} ms",
        i % 11,
        i * 37 % 250
    )
}

fn main() -> Res<()> {
    // 1. from_sequence cuts a sequence into partitions (here 4); map and
    //    filter are fused: one task per partition runs the whole pipeline.
    let numbers = Bag::from_sequence(1..=1_000u64, 4)?;
    println!("{} partitions", numbers.npartitions());
    let odd_squares = numbers.filter(|x| x % 2 == 1).map(|x| x * x);
    let got = odd_squares.compute()?; // a Vec<u64>, in order
    let want: Vec<u64> = (1..=1_000u64)
        .filter(|x| x % 2 == 1)
        .map(|x| x * x)
        .collect();
    assert_eq!(got, want);

    // fold: each partition folds from the initial value with the first
    // function, then the partials are combined with the second (which must be
    // associative). The result is a Delayed value: compute() gives the number.
    let total = odd_squares.fold(0u64, |acc, x| acc + x, |a, b| a + b);
    assert_eq!(total.compute()?, want.iter().sum::<u64>());
    assert_eq!(odd_squares.count().compute()?, want.len());
    println!("sum of odd squares up to 1000: {}", total.compute()?);

    // 2. read_text: a bag of lines from files matching a glob, one
    //    partition per block of ~4 kB (a line belongs to the block it starts in).
    let dir = std::env::temp_dir().join(format!("dask-example-bag-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut all_lines = Vec::new();
    for file in 0..3u64 {
        let lines: Vec<String> = (0..400).map(|i| log_line(file * 400 + i)).collect();
        std::fs::write(dir.join(format!("log-{file}.txt")), lines.join("\n") + "\n")?;
        all_lines.extend(lines);
    }
    let pattern = dir.join("log-*.txt");
    let lines = read_text(pattern.to_str().ok_or("a non-UTF-8 temp dir")?, Some(4_096))?;
    println!("read_text: {} partitions over 3 files", lines.npartitions());
    assert_eq!(lines.compute()?, all_lines);

    // 3. A word count: frequencies gives (word, count) pairs in no particular
    //    order; topk keeps the k largest by a key (ties broken by the word).
    let counts = lines.flat_map(words).frequencies();
    let mut got = counts.compute()?;
    got.sort();
    let mut oracle: HashMap<String, usize> = HashMap::new();
    for w in all_lines.iter().flat_map(|l| l.split_whitespace()) {
        *oracle.entry(w.to_owned()).or_default() += 1;
    }
    let mut want: Vec<(String, usize)> = oracle.into_iter().collect();
    want.sort();
    assert_eq!(got, want);
    let top = counts
        .topk(3, |(w, n)| (*n, std::cmp::Reverse(w.clone())))?
        .compute()?;
    want.sort_by(|(wa, a), (wb, b)| b.cmp(a).then(wa.cmp(wb)));
    assert_eq!(top, want[..3]);
    println!("top 3 words: {top:?}");

    // 4. Per-user statistics. groupby shuffles every line to its key's
    //    partition (all-to-all); foldby reduces per key without moving the
    //    lines, and is what to reach for when a reduction is all you need.
    let user = |l: &String| l.split(' ').nth(2).unwrap_or("").to_owned();
    let mut groups: Vec<(String, usize)> =
        lines.groupby(user).map(|(u, ls)| (u, ls.len())).compute()?;
    groups.sort();
    let millis = |l: String| -> u64 {
        l.split(' ')
            .nth(6)
            .and_then(|m| m.parse().ok())
            .unwrap_or(0)
    };
    let mut slowest: Vec<(String, u64)> = lines
        .foldby(user, 0u64, move |m, l| m.max(millis(l)), |a, b| a.max(b))
        .compute()?;
    slowest.sort();
    let mut want_groups: HashMap<String, (usize, u64)> = HashMap::new();
    for l in &all_lines {
        let e = want_groups.entry(user(l)).or_default();
        e.0 += 1;
        e.1 = e.1.max(millis(l.clone()));
    }
    let mut want_groups: Vec<(String, (usize, u64))> = want_groups.into_iter().collect();
    want_groups.sort();
    let merged: Vec<(String, (usize, u64))> = groups
        .into_iter()
        .zip(slowest)
        .map(|((u, n), (_, ms))| (u, (n, ms)))
        .collect();
    assert_eq!(merged, want_groups);
    println!("lines and slowest request per user: {merged:?}");

    // 5. to_dataframe: each partition becomes a polars frame, the bag a
    //    dask dataframe (then every dataframe operation applies).
    let errors = lines
        .filter(|l| l.starts_with("ERROR"))
        .map(move |l| (user(&l), millis(l)));
    let frame = errors.to_dataframe(
        |rows: Vec<(String, u64)>| {
            let (users, ms): (Vec<String>, Vec<u64>) = rows.into_iter().unzip();
            df!("user" => users, "ms" => ms)
        },
        None,
    )?;
    println!("{frame}");
    let out = frame.compute()?;
    let want_ms: Vec<u64> = all_lines
        .iter()
        .filter(|l| l.starts_with("ERROR"))
        .map(|l| millis(l.clone()))
        .collect();
    let got_ms: Vec<u64> = out.column("ms")?.u64()?.into_no_null_iter().collect();
    assert_eq!(got_ms, want_ms);

    std::fs::remove_dir_all(&dir)?;
    println!("ok: bag");
    Ok(())
}
