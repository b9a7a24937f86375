//! [`words`]: the words of an owned line, for `flat_map` without a `Vec` per line.

/// The whitespace-separated words of `line`, each as an owned `String`.
///
/// `str::split_whitespace` borrows its line, so a `flat_map` closure cannot
/// return it; collecting into a `Vec` per line costs an allocation per line.
/// `words` keeps the line and hands out its words one by one:
///
/// ```
/// use dask_bag::{words, Bag};
/// use dask_core::Collection;
/// # use dask_sync_scheduler as _;
/// let lines = Bag::from_sequence(["a b".to_string(), " c  ".to_string()], 2).unwrap();
/// let all = lines.flat_map(words).compute().unwrap();
/// assert_eq!(all, ["a", "b", "c"]);
/// ```
pub fn words(line: String) -> Words {
    Words { line, pos: 0 }
}

/// The iterator [`words`] returns.
#[derive(Debug, Clone)]
pub struct Words {
    line: String,
    pos: usize,
}

impl Iterator for Words {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        let rest = &self.line[self.pos..];
        let start = rest.find(|c: char| !c.is_whitespace())?;
        let word = &rest[start..];
        let len = word.find(char::is_whitespace).unwrap_or(word.len());
        let out = word[..len].to_owned();
        self.pos += start + len;
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::words;

    #[test]
    fn matches_split_whitespace() {
        for line in [
            "",
            "   ",
            "one",
            " lead and trail ",
            "tabs\tand\nnewlines\r\nmixed",
            "unicode\u{2003}em space\u{a0}nbsp ünïcödé",
        ] {
            let ours: Vec<String> = words(line.to_owned()).collect();
            let std: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(ours, std, "line {line:?}");
        }
    }
}
