//! A walk over the separators and line ends of a CSV block, 64 bytes at a
//! time (it stops at a quote): each 64 bytes become bit masks of their separators,
//! newlines and quotes (SSE2 on x86_64), and the walk moves by bit tricks
//! on the masks, so passing fields that are not read costs a few
//! instructions rather than a scan of their bytes (the way polars' and
//! simdjson's splitters work).

/// A position in a block: the masks of its current 64 bytes, with the bits
/// of what was already passed cleared.
pub(super) struct Walk<'a> {
    block: &'a [u8],
    separator: u8,
    /// Offset of the current 64 bytes.
    base: usize,
    /// Separators and line ends not yet passed in the current 64 bytes.
    seps: u64,
    newlines: u64,
}

impl<'a> Walk<'a> {
    /// A walk from the start of `block`. A block that does not end with
    /// `\n` gets a line end just past its last byte, so every line ends
    /// with one. `None` if the first 64 bytes hold a quote.
    pub(super) fn new(block: &'a [u8], separator: u8) -> Option<Self> {
        let mut walk = Walk {
            block,
            separator,
            base: 0,
            seps: 0,
            newlines: 0,
        };
        walk.load()?;
        Some(walk)
    }

    /// Passes `n >= 1` separators of the current line: the offset just
    /// after the last one. `None` if the line ends first.
    #[inline]
    pub(super) fn skip(&mut self, mut n: u32) -> Option<usize> {
        loop {
            let in_line = self.seps & below_lowest(self.newlines);
            let count = in_line.count_ones();
            if count >= n {
                for _ in 1..n {
                    self.seps &= self.seps - 1;
                }
                let bit = self.seps.trailing_zeros() as usize;
                self.seps &= self.seps - 1;
                return Some(self.base + bit + 1);
            }
            if self.newlines != 0 {
                return None;
            }
            n -= count;
            self.next_chunk()?;
        }
    }

    /// The end of the field being passed: the offset of the next separator
    /// (passed) or line end (not passed, with `true`).
    #[inline]
    pub(super) fn field_end(&mut self) -> Option<(usize, bool)> {
        loop {
            let sep = self.seps.trailing_zeros();
            let newline = self.newlines.trailing_zeros();
            if sep < newline {
                self.seps &= self.seps - 1;
                return Some((self.base + sep as usize, false));
            }
            if newline < 64 {
                return Some((self.base + newline as usize, true));
            }
            self.next_chunk()?;
        }
    }

    /// Passes the rest of the line and its end: how many separators were
    /// left in it, and the offset of its line end.
    #[inline]
    pub(super) fn line_end(&mut self) -> Option<(u32, usize)> {
        let mut count = 0;
        loop {
            if self.newlines != 0 {
                let bit = self.newlines.trailing_zeros();
                let before = below_lowest(self.newlines);
                count += (self.seps & before).count_ones();
                self.seps &= !before;
                self.newlines &= self.newlines - 1;
                return Some((count, self.base + bit as usize));
            }
            count += self.seps.count_ones();
            self.next_chunk()?;
        }
    }

    /// Moves to the next 64 bytes. `None` past the block's last line end
    /// (a caller that reads lines never gets there) or at a quote.
    fn next_chunk(&mut self) -> Option<()> {
        self.base += 64;
        self.load()
    }

    /// Loads the masks of the 64 bytes at `base`, the last ones padded.
    fn load(&mut self) -> Option<()> {
        let rest = self.block.get(self.base..)?;
        let masks = match rest.first_chunk::<64>() {
            Some(chunk) => masks(chunk, self.separator),
            None => {
                let mut chunk = [0u8; 64];
                chunk[..rest.len()].copy_from_slice(rest);
                let mut masks = masks(&chunk, self.separator);
                let inside = (1u64 << rest.len()) - 1;
                masks.seps &= inside;
                masks.newlines &= inside;
                masks.quotes &= inside;
                if !self.block.ends_with(b"\n") {
                    masks.newlines |= 1 << rest.len();
                }
                masks
            }
        };
        if masks.quotes != 0 {
            return None;
        }
        self.seps = masks.seps;
        self.newlines = masks.newlines;
        Some(())
    }
}

/// The bits below the lowest set bit of `x` (all of them when `x` is 0).
fn below_lowest(x: u64) -> u64 {
    (x & x.wrapping_neg()).wrapping_sub(1)
}

/// Which of 64 bytes are separators, `\n` and `"` (bit `i` for byte `i`).
#[derive(Debug, PartialEq, Eq)]
struct Masks {
    seps: u64,
    newlines: u64,
    quotes: u64,
}

/// The masks of `chunk`.
#[cfg(target_arch = "x86_64")]
fn masks(chunk: &[u8; 64], separator: u8) -> Masks {
    #[allow(unsafe_code)]
    // SAFETY: SSE2 is part of every x86_64 target, so `sse2_masks`'s
    // required feature is always present.
    unsafe {
        sse2_masks(chunk, separator)
    }
}

/// [`masks`] with SSE2: 16 bytes compared at once.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
fn sse2_masks(chunk: &[u8; 64], separator: u8) -> Masks {
    use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8};
    let [separator, newline, quote] =
        [separator, b'\n', b'"'].map(|b| _mm_set1_epi8(i8::from_ne_bytes([b])));
    let mut masks = Masks {
        seps: 0,
        newlines: 0,
        quotes: 0,
    };
    for (i, part) in chunk.chunks_exact(16).enumerate() {
        #[allow(unsafe_code)]
        // SAFETY: `part` is 16 readable bytes, and an unaligned load has no
        // alignment requirement.
        let v = unsafe { _mm_loadu_si128(part.as_ptr().cast()) };
        // movemask sets only the low 16 bits.
        let bits = |m| u64::from(_mm_movemask_epi8(m).cast_unsigned()) << (16 * i);
        masks.seps |= bits(_mm_cmpeq_epi8(v, separator));
        masks.newlines |= bits(_mm_cmpeq_epi8(v, newline));
        masks.quotes |= bits(_mm_cmpeq_epi8(v, quote));
    }
    masks
}

/// [`masks`] one byte at a time, where SSE2 is not known to be present.
#[cfg(not(target_arch = "x86_64"))]
fn masks(chunk: &[u8; 64], separator: u8) -> Masks {
    scalar_masks(chunk, separator)
}

/// The masks one byte at a time: the fallback, and the oracle of the SIMD one.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn scalar_masks(chunk: &[u8; 64], separator: u8) -> Masks {
    let mask = |byte: u8| {
        chunk
            .iter()
            .enumerate()
            .fold(0, |m, (i, &b)| m | u64::from(b == byte) << i)
    };
    Masks {
        seps: mask(separator),
        newlines: mask(b'\n'),
        quotes: mask(b'"'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simd_masks_equal_the_bytewise_ones() {
        let alphabet = b",;\n\"a0\r\t\x80\xff";
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for separator in [b',', b';', b'\t'] {
            for _ in 0..2000 {
                let mut chunk = [0u8; 64];
                for b in &mut chunk {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    *b = alphabet[(state % alphabet.len() as u64) as usize];
                }
                assert_eq!(masks(&chunk, separator), scalar_masks(&chunk, separator));
            }
        }
    }

    /// Every line of `block` as (separators in it, offset of its end),
    /// walked with `line_end`.
    fn lines(block: &[u8]) -> Option<Vec<(u32, usize)>> {
        let mut walk = Walk::new(block, b',')?;
        let mut out = Vec::new();
        let mut start = 0;
        while start < block.len() {
            let (seps, end) = walk.line_end()?;
            out.push((seps, end));
            start = end + 1;
        }
        Some(out)
    }

    #[test]
    fn a_walk_finds_every_line_and_field_of_blocks_around_64_bytes() {
        for len in [1, 2, 63, 64, 65, 127, 128, 129, 200] {
            for trailing_newline in [false, true] {
                // Lines "a,bb,c" of varying width, cut to `len` bytes.
                let mut block: Vec<u8> = (0..len).map(|i| [b'a', b',', b'b'][i % 3]).collect();
                for i in (7..len).step_by(11) {
                    block[i] = b'\n';
                }
                if trailing_newline {
                    *block.last_mut().unwrap() = b'\n';
                }
                let text = std::str::from_utf8(&block).unwrap();
                let want: Vec<(u32, usize)> = text
                    .strip_suffix('\n')
                    .unwrap_or(text)
                    .split('\n')
                    .scan(0, |start, line| {
                        let end = *start + line.len();
                        *start = end + 1;
                        Some((line.matches(',').count() as u32, end))
                    })
                    .collect();
                assert_eq!(lines(&block), Some(want), "{text:?}");
            }
        }
        assert_eq!(lines(b"a,b\n\"c\"\n"), None, "a quote stops the walk");
    }

    #[test]
    fn skip_and_field_end_stop_at_the_line_end() {
        let block = b"a,bb,ccc\nd,e\n";
        let mut walk = Walk::new(block, b',').unwrap();
        assert_eq!(walk.skip(2), Some(5));
        assert_eq!(walk.field_end(), Some((8, true)));
        assert_eq!(walk.line_end(), Some((0, 8)));
        assert_eq!(walk.field_end(), Some((10, false)));
        assert_eq!(walk.skip(1), None, "the line has one separator");
        assert_eq!(walk.line_end(), Some((0, 12)));
    }
}
