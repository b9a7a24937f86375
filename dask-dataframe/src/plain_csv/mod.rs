//! CSV blocks of plain records read without polars: every line unquoted,
//! not blank, with exactly one field per column. [`plain_rows`] counts such
//! a block; [`plain_numbers`] reads its integer and float columns when each
//! value has the plainest form. Both say `None` for anything else (a quote
//! included); the block then goes to polars, which reads it or explains
//! what is wrong. The fast paths never decide what a block means, they only
//! read the blocks whose meaning is plain.

mod walk;

use polars::prelude as pl;
use polars::prelude::{DataType, IntoColumn, NamedFrom};

use walk::Walk;

/// The rows of `block` (whole lines) when every line is a plain record of
/// `fields` fields: no quote, not blank, `fields - 1` separators. Such a
/// line is one row whatever its values, so the block is counted without
/// parsing them, as polars' own row count of a CSV file does. `None` when a
/// line is anything else: the block is then parsed, which counts it or
/// explains what is wrong (a ragged row, say).
pub(crate) fn plain_rows(block: &[u8], separator: u8, fields: usize) -> Option<usize> {
    plain_lines(block, separator, fields, |_, _| Some(0))
}

/// Walks the lines of `block`, each through `read_line` (given the walk
/// at the line's start and that offset; it says how many separators it
/// passed), then checks that the line is a plain record of `fields` fields:
/// not blank, `fields - 1` separators. The number of lines, or `None` at
/// the first line that is not plain (or that `read_line` refuses).
fn plain_lines<'a>(
    block: &'a [u8],
    separator: u8,
    fields: usize,
    mut read_line: impl FnMut(&mut Walk<'a>, usize) -> Option<u32>,
) -> Option<usize> {
    let separators = u32::try_from(fields.checked_sub(1)?).ok()?;
    let mut walk = Walk::new(block, separator)?;
    let mut rows = 0;
    let mut line_start = 0;
    while line_start < block.len() {
        let passed = read_line(&mut walk, line_start)?;
        let (rest, end) = walk.line_end()?;
        if passed + rest != separators || is_blank(&block[line_start..end]) {
            return None;
        }
        rows += 1;
        line_start = end + 1;
    }
    Some(rows)
}

/// Whether a line (without its `\n`) is blank: empty or a lone `\r`.
fn is_blank(line: &[u8]) -> bool {
    matches!(line, [] | [b'\r'])
}

/// A kept column being read.
enum Numbers {
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
}

/// The kept columns of `block` (whole lines; see [`plain_rows`] for the
/// plain ones) when every one is `Int64` or `Float64` and each value is
/// empty (null) or of the plainest form: `-?[0-9]{1,18}` for integers, `-?[0-9]+(.[0-9]+)?`
/// for floats. Such values read as polars reads them (floats correctly
/// rounded by both). `None` for any other block.
pub(crate) fn plain_numbers(
    block: &[u8],
    separator: u8,
    file_schema: &pl::Schema,
    out_schema: &pl::Schema,
) -> Option<pl::DataFrame> {
    // The kept fields in file order, each with its column.
    let mut kept: Vec<(u32, usize)> = Vec::with_capacity(out_schema.len());
    let mut columns = Vec::with_capacity(out_schema.len());
    for (name, dtype) in out_schema.iter() {
        kept.push((
            u32::try_from(file_schema.index_of(name)?).ok()?,
            columns.len(),
        ));
        columns.push(match dtype {
            DataType::Int64 => Numbers::Int(Vec::new()),
            DataType::Float64 => Numbers::Float(Vec::new()),
            _ => return None,
        });
    }
    if columns.is_empty() {
        return None;
    }
    kept.sort_unstable();
    let read_line = |walk: &mut Walk<'_>, line_start: usize| {
        // Separators passed in this line: the index of the field at hand.
        let mut passed = 0;
        let mut start = line_start;
        for &(field, column) in &kept {
            if field > passed {
                start = walk.skip(field - passed)?;
                passed = field;
            }
            let (end, at_line_end) = walk.field_end()?;
            let value = &block[start..end];
            if at_line_end {
                columns[column].push(value.strip_suffix(b"\r").unwrap_or(value))?;
            } else {
                columns[column].push(value)?;
                passed += 1;
                start = end + 1;
            }
        }
        Some(passed)
    };
    let rows = plain_lines(block, separator, file_schema.len(), read_line)?;
    let columns = out_schema
        .iter_names()
        .zip(columns)
        .map(|(name, numbers)| match numbers {
            Numbers::Int(v) => pl::Series::new(name.clone(), v).into_column(),
            Numbers::Float(v) => pl::Series::new(name.clone(), v).into_column(),
        })
        .collect();
    pl::DataFrame::new(rows, columns).ok()
}

impl Numbers {
    /// Reads `value` into the column (`None` if it is not plain).
    #[inline]
    fn push(&mut self, value: &[u8]) -> Option<()> {
        match self {
            Numbers::Int(v) => v.push(value_or_null(value, plain_int)?),
            Numbers::Float(v) => v.push(value_or_null(value, plain_float)?),
        }
        Some(())
    }
}

/// An empty field as null (`Some(None)`), else `value` parsed (`None` if it
/// does not parse).
fn value_or_null<T>(value: &[u8], parse: fn(&[u8]) -> Option<T>) -> Option<Option<T>> {
    if value.is_empty() {
        Some(None)
    } else {
        parse(value).map(Some)
    }
}

/// Whether `value` starts with a minus, and the rest.
fn split_sign(value: &[u8]) -> (bool, &[u8]) {
    match value.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, value),
    }
}

/// `-?[0-9]{1,18}` as an integer (18 digits never overflow).
fn plain_int(value: &[u8]) -> Option<i64> {
    let (negative, digits) = split_sign(value);
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n * 10 + i64::from(d - b'0');
    }
    Some(if negative { -n } else { n })
}

/// Powers of ten that are exact in an `f64`.
const EXACT_POWERS_OF_TEN: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// `-?[0-9]+(.[0-9]+)?` as a float, correctly rounded.
///
/// With at most 15 digits the digits make an integer `m < 2^53` and the
/// value is `m / 10^k` with `10^k` exact: one division of two exact values,
/// which IEEE rounds correctly (Clinger's fast path). Longer numbers go to
/// the standard library's parser, also correctly rounded.
fn plain_float(value: &[u8]) -> Option<f64> {
    let (negative, digits) = split_sign(value);
    let (whole, fraction) = match memchr::memchr(b'.', digits) {
        Some(dot) => (&digits[..dot], &digits[dot + 1..]),
        None => (digits, &[][..]),
    };
    let all_digits = |part: &[u8]| part.iter().all(u8::is_ascii_digit);
    let has_dot = whole.len() < digits.len();
    if whole.is_empty()
        || (has_dot && fraction.is_empty())
        || !all_digits(whole)
        || !all_digits(fraction)
    {
        return None;
    }
    if whole.len() + fraction.len() > 15 {
        return std::str::from_utf8(value).ok()?.parse().ok();
    }
    let m = whole
        .iter()
        .chain(fraction)
        .fold(0u64, |m, &d| m * 10 + u64::from(d - b'0'));
    // `m < 10^15 < 2^53`: exact as an f64.
    #[allow(clippy::cast_precision_loss)]
    let x = m as f64 / EXACT_POWERS_OF_TEN[fraction.len()];
    Some(if negative { -x } else { x })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_floats_equal_the_standard_parse_and_odd_ones_are_refused() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..100_000 {
            let digits = (next() % 19) as usize + 1;
            let text: String = (0..digits)
                .map(|_| char::from(b'0' + (next() % 10) as u8))
                .collect();
            let dot = (next() % (digits as u64 + 1)) as usize;
            let sign = if next() % 2 == 0 { "-" } else { "" };
            let value = if dot == 0 || dot == digits {
                format!("{sign}{text}")
            } else {
                format!("{sign}{}.{}", &text[..dot], &text[dot..])
            };
            let want: f64 = value.parse().unwrap();
            let got = plain_float(value.as_bytes()).unwrap();
            assert_eq!(got.to_bits(), want.to_bits(), "{value}");
        }
        for odd in [
            "", "-", ".5", "5.", "+5", "1e3", " 1", "1 ", "1.2.3", "--1", "0x1", "nan",
        ] {
            assert_eq!(plain_float(odd.as_bytes()), None, "{odd:?}");
        }
        assert_eq!(plain_int(b"-123"), Some(-123));
        for odd in ["", "-", "+1", "1.0", " 1", "1234567890123456789"] {
            assert_eq!(plain_int(odd.as_bytes()), None, "{odd:?}");
        }
    }
}
