//! read_text and to_textfiles against the files' own lines.

use std::io::Write;

use dask_bag::{read_text, Bag};
use dask_core::{Collection, Scheduler};
use proptest::prelude::*;

use crate::common::{check, data_and_parts, TempDir};

fn write_gz(path: &std::path::Path, text: &str) {
    let f = std::fs::File::create(path).unwrap();
    let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap();
}

/// The oracle: `str::lines` (which also strips `\r\n`).
fn lines_of(texts: &[String]) -> Vec<String> {
    texts
        .iter()
        .flat_map(|t| t.lines().map(str::to_owned))
        .collect()
}

fn line_strategy() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[a-z ]{1,12}", "[a-zé€]{1,5}",]
}

/// A file's text: random lines, `\n` or `\r\n`, with or without a final newline.
fn file_strategy() -> impl Strategy<Value = String> {
    (
        proptest::collection::vec(line_strategy(), 0..20),
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

dask_testing::scheduler_test! {
    fn every_line_exactly_once(s: &dyn Scheduler) {
        let strategy = (
            proptest::collection::vec(file_strategy(), 1..4),
            proptest::option::of(1usize..40),
            any::<bool>(),
        );
        check(strategy, |(files, blocksize, gz_first)| {
            let dir = TempDir::new("read");
            for (i, text) in files.iter().enumerate() {
                if gz_first && i == 0 {
                    write_gz(&dir.path().join(format!("f{i}.txt.gz")), text);
                } else {
                    std::fs::write(dir.path().join(format!("f{i}.txt")), text).unwrap();
                }
            }
            let bag = read_text(dir.join("f*"), blocksize).unwrap();
            if blocksize.is_none() {
                prop_assert_eq!(bag.npartitions(), files.len());
            }
            let oracle = lines_of(&files);
            prop_assert_eq!(&bag.compute_with(s).unwrap(), &oracle);
            prop_assert_eq!(bag.count().compute_with(s).unwrap(), oracle.len());
            Ok(())
        });
    }

    fn to_textfiles_roundtrip(s: &dyn Scheduler) {
        check((data_and_parts(), any::<bool>()), |((data, n), gz)| {
            let dir = TempDir::new("write");
            let bag = Bag::from_sequence(data.clone(), n).unwrap().map(|x| x * 10);
            let ext = if gz { "txt.gz" } else { "txt" };
            let pattern = dir.join(&format!("out/part-*.{ext}"));
            let paths = bag.to_textfiles(&pattern).unwrap().compute_with(s).unwrap();
            prop_assert_eq!(paths.len(), n);
            let width = (n - 1).to_string().len();
            for (i, p) in paths.iter().enumerate() {
                let want = pattern.replace('*', &format!("{i:0width$}"));
                prop_assert_eq!(p.to_str().unwrap(), want.as_str());
            }
            let back = read_text(&pattern, None).unwrap();
            let oracle: Vec<String> = data.iter().map(|x| (x * 10).to_string()).collect();
            prop_assert_eq!(&back.compute_with(s).unwrap(), &oracle);
            Ok(())
        });
    }

    fn single_path_and_word_count(s: &dyn Scheduler) {
        let dir = TempDir::new("wc");
        let text = "the cat\nthe dog\n\nthe end\n";
        let path = dir.join("a.txt");
        std::fs::write(&path, text).unwrap();
        let top = read_text(&path, Some(5))
            .unwrap()
            .flat_map(dask_bag::words)
            .frequencies()
            .topk(2, |(w, n)| (*n, std::cmp::Reverse(w.clone())))
            .unwrap();
        let mut oracle: Vec<(String, usize)> = Vec::new();
        for w in text.split_whitespace() {
            match oracle.iter_mut().find(|(x, _)| x == w) {
                Some((_, n)) => *n += 1,
                None => oracle.push((w.to_owned(), 1)),
            }
        }
        oracle.sort_by(|(a, n), (b, m)| m.cmp(n).then(a.cmp(b)));
        oracle.truncate(2);
        assert_eq!(top.compute_with(s).unwrap(), oracle);
    }

    fn take_reads_the_first_lines(s: &dyn Scheduler) {
        let dir = TempDir::new("take");
        std::fs::write(dir.path().join("a.txt"), "1\n2\n3\n").unwrap();
        std::fs::write(dir.path().join("b.txt"), "4\n5\n").unwrap();
        let bag = read_text(dir.join("*.txt"), None).unwrap();
        assert_eq!(bag.take_with(4, s).unwrap(), ["1", "2", "3", "4"]);
        assert_eq!(bag.take_with(9, s).unwrap(), ["1", "2", "3", "4", "5"]);
    }
}

proptest! {
    /// `words` yields exactly `str::split_whitespace`'s words, owned.
    #[test]
    fn words_match_split_whitespace(line in "[a-c \t\n\u{a0}\u{2003}é]{0,40}") {
        let ours: Vec<String> = dask_bag::words(line.clone()).collect();
        let std: Vec<&str> = line.split_whitespace().collect();
        prop_assert_eq!(ours, std);
    }
}
