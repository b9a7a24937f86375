//! [`words`]: the words of an owned line, for `flat_map` without a `Vec` per
//! line; and the fused word-count path behind `flat_map(words).frequencies()`.
//!
//! `bag.flat_map(words)` is recognised by the type of the function passed
//! (the fn item `words` itself, not a closure calling it): the pipeline step
//! becomes a [`WordsStage`], which yields owned words like any `flat_map` to
//! every consumer, and which `frequencies` (and `count`) run without owning a
//! word: they visit borrowed `&str` slices of the text, and `frequencies`
//! allocates a `String` only for a word not yet in its partition's map.
//! Under a [`read_text`](crate::read_text) pipeline the text is read in blocks
//! of whole lines (no `String` per line); under a materialized bag of lines the
//! lines are borrowed from the partition.

use std::any::TypeId;

use rustc_hash::FxHashMap as HashMap;

use crate::stage::{DynStage, FlatMap, Stage, Stream};
use crate::wire::TextInput;
use crate::Result;
use dask_core::Value;
use serde::{Deserialize, Serialize};

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
///
/// Words are exactly `str::split_whitespace`'s (Unicode `White_Space`).
/// Passing `words` itself to [`Bag::flat_map`](crate::Bag::flat_map) (not a
/// closure calling it) lets a following [`Bag::frequencies`](crate::Bag::frequencies)
/// or [`Bag::count`](crate::Bag::count) count borrowed words without
/// allocating one `String` per word or per line: same API, same answer.
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
        let (start, end) = next_word(&self.line, self.pos)?;
        self.pos = end;
        Some(self.line[start..end].to_owned())
    }
}

/// ASCII bytes that are `char::is_whitespace`: `\t \n \v \f \r` and space.
const fn ascii_space_table() -> [bool; 128] {
    let mut t = [false; 128];
    t[b'\t' as usize] = true;
    t[b'\n' as usize] = true;
    t[0x0b] = true;
    t[0x0c] = true;
    t[b'\r' as usize] = true;
    t[b' ' as usize] = true;
    t
}
static ASCII_SPACE: [bool; 128] = ascii_space_table();

/// Whether the char starting at byte `i` of `s` is whitespace, and its length.
#[inline(always)]
fn space_at(s: &str, i: usize) -> (bool, usize) {
    let b = s.as_bytes()[i];
    if b < 0x80 {
        (ASCII_SPACE[b as usize], 1)
    } else {
        // A char boundary: `i` only ever advances by whole chars.
        let c = s[i..].chars().next().unwrap_or(' ');
        (c.is_whitespace(), c.len_utf8())
    }
}

/// The byte range of the first word of `s` at or after byte `from` (a char
/// boundary), as `split_whitespace` cuts it.
#[inline]
fn next_word(s: &str, from: usize) -> Option<(usize, usize)> {
    let bytes = s.as_bytes();
    let mut i = from;
    loop {
        if i >= bytes.len() {
            return None;
        }
        let (space, len) = space_at(s, i);
        if !space {
            break;
        }
        i += len;
    }
    let start = i;
    while i < bytes.len() {
        // Skip 8 plain ASCII bytes at a time up to one that may end the word.
        if let Some(chunk) = bytes.get(i..i + 8) {
            let flags = may_end_word(u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8])));
            if flags == 0 {
                i += 8;
                continue;
            }
            // Only ASCII was skipped, so `i` stays on a char boundary.
            i += (flags.trailing_zeros() / 8) as usize;
        }
        let (space, len) = space_at(s, i);
        if space {
            break;
        }
        i += len;
    }
    Some((start, i))
}

/// Flags (the high bit of each byte) the bytes of a little-endian `chunk`
/// that may end a word: below `0x21` (ASCII whitespace, other controls) or
/// `0x80` and up (non-ASCII). Exact for the lowest flagged byte, which is all
/// its caller uses (a borrow can only flag bytes above a true one).
#[inline(always)]
fn may_end_word(chunk: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    (chunk.wrapping_sub(ONES * 0x21) & !chunk & HIGH) | (chunk & HIGH)
}

/// Calls `f` on every word of `text`, exactly `text.split_whitespace()`.
#[inline]
pub(crate) fn for_each_word(text: &str, mut f: impl FnMut(&str)) {
    let mut pos = 0;
    while let Some((start, end)) = next_word(text, pos) {
        f(&text[start..end]);
        pos = end;
    }
}

/// Longest word (in bytes) [`Counts`] keys inline.
const INLINE_MAX: usize = 15;

/// Word counts of one partition, or of several merged: the partial result
/// of the fused `frequencies`, which crosses processes with its codec.
///
/// Words of up to [`INLINE_MAX`] bytes (nearly all words of natural text)
/// are keyed by their bytes packed into a [`Packed`] key: counting allocates
/// nothing, a probe compares two integers instead of calling `memcmp`, and
/// merging partial counts rehashes integers. Longer words are `String` keys.
/// Only the final step makes a `String` of each distinct word, once.
#[derive(Default, Debug, Serialize, Deserialize)]
pub(crate) struct Counts {
    short: HashMap<Packed, usize>,
    long: HashMap<String, usize>,
}

impl Counts {
    /// Counts every word of `text`, exactly `text.split_whitespace()`.
    pub(crate) fn add_text(&mut self, text: &str) {
        let bytes = text.as_bytes();
        let mut pos = 0;
        while let Some((start, end)) = next_word(text, pos) {
            let len = end - start;
            if len <= INLINE_MAX {
                *self.short.entry(pack(bytes, start, len)).or_insert(0) += 1;
            } else {
                match self.long.get_mut(&text[start..end]) {
                    Some(n) => *n += 1,
                    None => {
                        self.long.insert(text[start..end].to_owned(), 1);
                    }
                }
            }
            pos = end;
        }
    }

    /// The sum of several partial counts (the largest is copied, the others
    /// added into it).
    pub(crate) fn merge(parts: &[&Counts]) -> Counts {
        let Some(largest) = parts.iter().max_by_key(|c| c.short.len() + c.long.len()) else {
            return Counts::default();
        };
        let mut out = Counts {
            short: largest.short.clone(),
            long: largest.long.clone(),
        };
        for part in parts {
            if std::ptr::eq(*part, *largest) {
                continue;
            }
            for (&k, &n) in &part.short {
                *out.short.entry(k).or_insert(0) += n;
            }
            for (k, &n) in &part.long {
                match out.long.get_mut(k) {
                    Some(c) => *c += n,
                    None => {
                        out.long.insert(k.clone(), n);
                    }
                }
            }
        }
        out
    }

    /// Every word with its count, in no particular order.
    pub(crate) fn into_pairs(self) -> Vec<(String, usize)> {
        let mut pairs = Vec::with_capacity(self.short.len() + self.long.len());
        for (Packed(lo, hi), n) in self.short {
            let bytes = (u128::from(lo) | (u128::from(hi) << 64)).to_le_bytes();
            let len = usize::from(bytes[INLINE_MAX]);
            // Packed from whole words of a `str`, so valid UTF-8: the lossy
            // conversion never replaces anything and copies once.
            pairs.push((String::from_utf8_lossy(&bytes[..len]).into_owned(), n));
        }
        pairs.extend(self.long);
        pairs
    }
}

/// A word of up to [`INLINE_MAX`] bytes, packed little-endian into 16 bytes
/// with its length in the top byte and zeros between. Two `u64` rather than a
/// `u128`, so a map entry takes 24 bytes instead of 32 (the map of a
/// partition's vocabulary then stays in L2 cache longer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
struct Packed(u64, u64);

/// The `len` (at most [`INLINE_MAX`]) bytes of `text` from `start`, packed.
#[inline(always)]
fn pack(text: &[u8], start: usize, len: usize) -> Packed {
    let raw = match text.get(start..start + 16) {
        // One unaligned 16-byte load; the bytes past the word are masked off.
        Some(window) => u128::from_le_bytes(window.try_into().unwrap_or([0; 16])),
        None => {
            let mut buf = [0u8; 16];
            buf[..len].copy_from_slice(&text[start..start + len]);
            u128::from_le_bytes(buf)
        }
    };
    let mask = (1u128 << (8 * len)) - 1;
    let key = (raw & mask) | ((len as u128) << 120);
    Packed(key as u64, (key >> 64) as u64)
}

/// A stage whose partitions are text the fused word path can borrow: whole
/// lines (or blocks of whole lines) handed to a visitor as `&str`.
pub(crate) trait TextSource: Send + Sync {
    /// Calls `f` on the text of partition `part`, in order, in pieces that
    /// each end at a line end (or the partition's end); returns the first
    /// error (the pieces before it have been visited).
    fn for_each_text(&self, part: usize, args: &[Value], f: &mut dyn FnMut(&str)) -> Result<()>;

    /// How a registered op names this source, if it has a registered form.
    fn wire(&self) -> Option<TextInput> {
        None
    }
}

/// `flat_map(words)`: owned words for generic consumers, borrowed ones for
/// the fused reductions.
#[derive(Clone)]
pub(crate) struct WordsStage {
    /// The plain `flat_map(words)` over `inner`, for generic consumers.
    generic: FlatMap<String, fn(String) -> Words>,
    inner: DynStage<String>,
}

impl Stage<String> for WordsStage {
    fn open<'a>(&'a self, part: usize, args: &'a [Value]) -> Result<Stream<'a, String>> {
        self.generic.open(part, args)
    }

    fn as_words(&self) -> Option<&WordsStage> {
        Some(self)
    }
}

impl WordsStage {
    /// Calls `f` on every word of partition `part`, borrowed; the first error wins.
    pub(crate) fn for_each_word(
        &self,
        part: usize,
        args: &[Value],
        f: &mut dyn FnMut(&str),
    ) -> Result<()> {
        match self.inner.as_text() {
            Some(text) => text.for_each_text(part, args, &mut |t| for_each_word(t, &mut *f)),
            None => {
                for line in self.inner.open(part, args)? {
                    for_each_word(&line?, &mut *f);
                }
                Ok(())
            }
        }
    }

    /// The registered form of the text below `words`, if it has one.
    pub(crate) fn wire_input(&self) -> Option<TextInput> {
        self.inner.as_text()?.wire()
    }

    /// The word counts of partition `part`.
    pub(crate) fn count_words(&self, part: usize, args: &[Value]) -> Result<Counts> {
        let mut counts = Counts::default();
        match self.inner.as_text() {
            Some(text) => text.for_each_text(part, args, &mut |t| counts.add_text(t))?,
            None => {
                for line in self.inner.open(part, args)? {
                    counts.add_text(&line?);
                }
            }
        }
        Ok(counts)
    }

    /// The number of words of partition `part`.
    pub(crate) fn num_words(&self, part: usize, args: &[Value]) -> Result<usize> {
        let mut n = 0usize;
        self.for_each_word(part, args, &mut |_| n += 1)?;
        Ok(n)
    }
}

/// The `TypeId` of the value's type (for a fn item: the item's own type).
fn type_id_of<F: 'static>(_: &F) -> TypeId {
    TypeId::of::<F>()
}

/// Whether `F` is the fn item [`words`] itself (each fn item has its own type).
pub(crate) fn is_words<F: 'static>() -> bool {
    TypeId::of::<F>() == type_id_of(&words)
}

/// `flat_map(words)` over `inner` as a [`WordsStage`], given back as the
/// `DynStage<U>` the caller expects: `Some` when `T` and `U` are `String`.
pub(crate) fn recognise<T: 'static, U: 'static>(inner: &DynStage<T>) -> Option<DynStage<U>> {
    let any: Box<dyn std::any::Any> = Box::new(inner.clone());
    let inner = *any.downcast::<DynStage<String>>().ok()?;
    let stage: DynStage<String> = std::sync::Arc::new(WordsStage {
        generic: FlatMap {
            inner: inner.clone(),
            f: words,
        },
        inner,
    });
    let any: Box<dyn std::any::Any> = Box::new(stage);
    any.downcast::<DynStage<U>>().ok().map(|b| *b)
}

#[cfg(test)]
mod tests {
    use super::{for_each_word, words};

    const LINES: [&str; 8] = [
        "",
        "   ",
        "one",
        " lead and trail ",
        "tabs\tand\nnewlines\r\nmixed\x0bvt\x0cff",
        "unicode\u{2003}em space\u{a0}nbsp ünïcödé\u{3000}x\u{85}y\u{1680}z",
        "not space: \u{1c}\u{1f}\u{200b}\u{feff}",
        "€€ 😀😀\u{2028}\u{2029}end",
    ];

    #[test]
    fn matches_split_whitespace() {
        for line in LINES {
            let ours: Vec<String> = words(line.to_owned()).collect();
            let std: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(ours, std, "line {line:?}");
            let mut borrowed = Vec::new();
            for_each_word(line, |w| borrowed.push(w.to_owned()));
            assert_eq!(borrowed, std, "line {line:?}");
        }
    }

    #[test]
    fn long_words_end_at_every_offset() {
        // A word-ending (or not) char at each offset of a 8-byte chunk, ASCII
        // and not, with text after it, so the 8-byte skip meets it everywhere.
        for c in [
            ' ', '\t', '\x01', '!', '\x7f', 'é', '\u{a0}', '\u{3000}', '😀',
        ] {
            for k in 0..20 {
                let s = format!("{}{c}{}x yz", "a".repeat(k), "b".repeat(20 - k));
                let mut ours = Vec::new();
                for_each_word(&s, |w| ours.push(w.to_owned()));
                let std: Vec<&str> = s.split_whitespace().collect();
                assert_eq!(ours, std, "{s:?}");
            }
        }
    }

    #[test]
    fn every_char_classified_like_std() {
        // Every char of the BMP and beyond, between two letters.
        for c in (0u32..0x3_0000).filter_map(char::from_u32) {
            let s = format!("a{c}b");
            let mut ours = Vec::new();
            for_each_word(&s, |w| ours.push(w.to_owned()));
            let std: Vec<&str> = s.split_whitespace().collect();
            assert_eq!(ours, std, "char U+{:04X}", c as u32);
        }
    }
}
