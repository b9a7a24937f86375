//! The fused word path (`flat_map(words)` then `frequencies` / `count`)
//! against `str::split_whitespace` on the whole text, over random texts and
//! partitionings; and the generic consumers of `flat_map(words)`.

use std::collections::BTreeMap;
use std::io::Write;

use dask_bag::{read_text, words, Bag, Error};
use dask_core::{Collection, Scheduler};
use proptest::prelude::*;

use crate::common::{check, TempDir};

/// The oracle: every word of every text, counted with a `BTreeMap`.
fn oracle_counts<'a>(texts: impl IntoIterator<Item = &'a str>) -> Vec<(String, usize)> {
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

/// Words of 1 to 64 bytes and separators, Unicode whitespace (`\u{85}`, nbsp, em space,
/// ideographic space, line separator) and look-alikes that are not
/// whitespace (`\u{1f}`, zero-width space) included.
fn line_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("   ".to_owned()),
        "[ab]{1,3}( [ab]{1,3}){0,4}",
        // Around 15 bytes: the longest word counted by its packed bytes.
        "[ab]{13,18}( [abé]{13,17}){0,3}",
        "[abé€😀 \t\u{0b}\u{0c}\u{85}\u{a0}\u{2003}\u{3000}\u{2028}\u{1f}\u{200b}]{0,16}",
    ]
}

/// A file: random lines, `\n` or `\r\n`, with or without a final newline.
fn file_strategy() -> impl Strategy<Value = String> {
    (
        proptest::collection::vec(line_strategy(), 0..16),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(lines, trailing, crlf)| {
            let sep = if crlf { "\r\n" } else { "\n" };
            let mut s = lines.join(sep);
            if trailing && !lines.is_empty() {
                s.push_str(sep);
            }
            s
        })
}

fn write_gz(path: &std::path::Path, text: &[u8]) {
    let f = std::fs::File::create(path).unwrap();
    let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
    gz.write_all(text).unwrap();
    gz.finish().unwrap();
}

/// The fused part op is in the graph (the closure path would not be).
fn is_fused(c: &impl Collection, op: &str) -> bool {
    let g = c.graph().to_graph();
    let want = format!("read_text|flat_map(words)|{op}-part");
    let found = g.iter().any(|(_, t)| t.op.name() == want);
    found
}

dask_testing::scheduler_test! {
    fn read_text_words_frequencies_and_count(s: &dyn Scheduler) {
        let strategy = (
            proptest::collection::vec(file_strategy(), 1..4),
            proptest::option::of(1usize..30),
            any::<bool>(),
            2usize..5,
        );
        check(strategy, |(files, blocksize, gz_first, split_every)| {
            let dir = TempDir::new("words");
            for (i, text) in files.iter().enumerate() {
                if gz_first && i == 0 {
                    write_gz(&dir.path().join(format!("f{i}.txt.gz")), text.as_bytes());
                } else {
                    std::fs::write(dir.path().join(format!("f{i}.txt")), text).unwrap();
                }
            }
            let words_bag = read_text(dir.join("f*"), blocksize)
                .unwrap()
                .with_split_every(split_every)
                .unwrap()
                .flat_map(words);
            let oracle = oracle_counts(files.iter().map(String::as_str));
            let freq = words_bag.frequencies();
            prop_assert!(is_fused(&freq, "frequencies"));
            prop_assert_eq!(sorted(freq.compute_with(s).unwrap()), oracle.clone());
            let count = words_bag.count();
            let n: usize = oracle.iter().map(|(_, n)| n).sum();
            prop_assert_eq!(count.compute_with(s).unwrap(), n);
            // Generic consumers see the same words, in order.
            let all: Vec<String> = files
                .iter()
                .flat_map(|t| t.split_whitespace().map(str::to_owned))
                .collect();
            prop_assert_eq!(&words_bag.compute_with(s).unwrap(), &all);
            Ok(())
        });
    }

    fn materialized_lines_with_empty_partitions(s: &dyn Scheduler) {
        let strategy = (proptest::collection::vec(line_strategy(), 0..20), 1usize..30);
        check(strategy, |(lines, nparts)| {
            // More partitions than lines gives empty partitions.
            let bag = Bag::from_sequence(lines.clone(), nparts).unwrap();
            let oracle = oracle_counts(lines.iter().map(String::as_str));
            let freq = bag.flat_map(words).frequencies();
            prop_assert_eq!(sorted(freq.compute_with(s).unwrap()), oracle.clone());
            let n: usize = oracle.iter().map(|(_, n)| n).sum();
            prop_assert_eq!(bag.flat_map(words).count().compute_with(s).unwrap(), n);
            // A step between the lines and `words`: lines come owned, words borrowed.
            let upper = bag.map(|l| l.to_uppercase()).flat_map(words).frequencies();
            let upper_lines: Vec<String> = lines.iter().map(|l| l.to_uppercase()).collect();
            prop_assert_eq!(
                sorted(upper.compute_with(s).unwrap()),
                oracle_counts(upper_lines.iter().map(String::as_str))
            );
            Ok(())
        });
    }

    fn generic_consumers_of_words(s: &dyn Scheduler) {
        let lines = vec!["b a\u{a0}b".to_owned(), String::new(), " c b ".to_owned()];
        let w = Bag::from_sequence(lines.clone(), 2).unwrap().flat_map(words);
        let all: Vec<String> = lines
            .iter()
            .flat_map(|l| l.split_whitespace().map(str::to_owned))
            .collect();
        assert_eq!(w.distinct().compute_with(s).unwrap(), ["b", "a", "c"]);
        assert_eq!(
            w.map(|x| x.len()).sum().compute_with(s).unwrap(),
            all.iter().map(String::len).sum::<usize>()
        );
        assert_eq!(
            w.filter(|x| x != "b").frequencies().compute_with(s).unwrap(),
            [("a".to_owned(), 1), ("c".to_owned(), 1)]
        );
        // Words of words: the fused count on a words bag's words.
        assert_eq!(w.flat_map(words).count().compute_with(s).unwrap(), all.len());
    }

    fn pieces_of_large_blocks(s: &dyn Scheduler) {
        // Over a MiB per block (the fused reader's piece), a line longer than
        // a piece, `\r\n`, and block edges anywhere.
        let dir = TempDir::new("large");
        let mut text = String::new();
        let mut i = 0u64;
        while text.len() < 2_600_000 {
            text.push_str(&format!("w{} é{} x\r\n", i % 977, i % 13));
            if i == 30_000 {
                text.push_str(&"long".repeat(300_000));
                text.push('\n');
            }
            i += 1;
        }
        let path = dir.join("big.txt");
        std::fs::write(&path, &text).unwrap();
        let oracle = oracle_counts([text.as_str()]);
        for blocksize in [None, Some(1_048_575), Some(1_000_003)] {
            let freq = read_text(&path, blocksize).unwrap().flat_map(words).frequencies();
            assert_eq!(sorted(freq.compute_with(s).unwrap()), oracle, "{blocksize:?}");
        }
    }

    fn invalid_utf8_in_fused_words(s: &dyn Scheduler) {
        let dir = TempDir::new("badwords");
        // The bad line starts after a MiB, so not in the reader's first piece.
        let mut text = b"ok\n".repeat(400_000);
        let bad_start = text.len() as u64;
        text.extend_from_slice(b"bad \xc3 line\r\nmore words\n");
        std::fs::write(dir.path().join("bad.txt"), &text).unwrap();
        write_gz(&dir.path().join("bad.txt.gz"), &text);
        for (name, blocksize) in [
            ("bad.txt", None),
            ("bad.txt", Some(700_000)),
            ("bad.txt.gz", None),
        ] {
            let path = dir.join(name);
            let bag = read_text(&path, blocksize).unwrap().flat_map(words);
            let lines_err = read_text(&path, blocksize).unwrap().compute_with(s).unwrap_err();
            let Some(Error::InvalidUtf8 { offset, source, .. }) = Error::find(&lines_err) else {
                panic!("lines: expected InvalidUtf8, got {lines_err}");
            };
            assert_eq!(*offset, bad_start);
            for err in [
                bag.frequencies().compute_with(s).unwrap_err(),
                bag.count().compute_with(s).unwrap_err(),
            ] {
                assert!(err.failed_key().is_some(), "{err}");
                match Error::find(&err) {
                    Some(Error::InvalidUtf8 { path: p, offset: o, source: e }) => {
                        assert_eq!(p.to_str().unwrap(), path);
                        assert_eq!(*o, bad_start, "{name} {blocksize:?}");
                        assert_eq!(e, source, "the same error as the lines path");
                    }
                    other => panic!("expected InvalidUtf8, got {other:?} from {err}"),
                }
            }
        }
    }
}

#[test]
fn only_the_words_fn_item_is_fused() {
    let dir = TempDir::new("fusedname");
    std::fs::write(dir.path().join("a.txt"), "a b\n").unwrap();
    let lines = read_text(dir.join("a.txt"), None).unwrap();
    assert!(is_fused(
        &lines.flat_map(words).frequencies(),
        "frequencies"
    ));
    assert!(is_fused(&lines.flat_map(words).count(), "count"));
    // A closure calling `words` is user code: the generic path.
    let closure = lines.flat_map(|l: String| words(l)).frequencies();
    assert!(!is_fused(&closure, "frequencies"));
}
