//! The seeded Zipf word corpus behind `cargo xtask gen-data text` and the
//! dask-bag word-count benchmark, which includes this very file (`#[path]`):
//! dependency-free on purpose.
//!
//! Words are ranks of a 50,000-word vocabulary drawn from a Zipf distribution
//! (exponent 1.1), 6 to 17 words a line, split evenly over the files.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Distinct words in the vocabulary.
pub const VOCABULARY: usize = 50_000;
/// Zipf exponent.
pub const EXPONENT: f64 = 1.1;

/// SplitMix64: a tiny seeded generator (no dependency).
pub struct SplitMix(pub u64);

impl SplitMix {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// A uniform float in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Word `rank` of the vocabulary: 2 to 9 lowercase letters, distinct per rank.
pub fn word(rank: usize) -> String {
    let mut rng = SplitMix(rank as u64 ^ 0x5eed);
    let len = 2 + (rng.next_u64() % 8) as usize;
    let mut w: String = (0..len)
        .map(|_| (b'a' + (rng.next_u64() % 26) as u8) as char)
        .collect();
    // A base-26 suffix of the rank keeps words distinct.
    let mut r = rank;
    loop {
        w.push((b'a' + (r % 26) as u8) as char);
        r /= 26;
        if r == 0 {
            break;
        }
    }
    w
}

/// Writes `files` files of about `mb / files` MB each into `dir` (reusing a
/// complete earlier corpus with the same parameters) and returns their paths.
pub fn generate(dir: &Path, mb: usize, files: usize, seed: u64) -> std::io::Result<Vec<PathBuf>> {
    let paths: Vec<PathBuf> = (0..files)
        .map(|i| dir.join(format!("part-{i:02}.txt")))
        .collect();
    let marker = dir.join("COMPLETE");
    let stamp = format!("mb={mb} files={files} seed={seed} vocabulary={VOCABULARY} s={EXPONENT}\n");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(&stamp) {
        return Ok(paths);
    }
    std::fs::create_dir_all(dir)?;
    let _ = std::fs::remove_file(&marker);
    let words: Vec<String> = (0..VOCABULARY).map(word).collect();
    let mut cdf = Vec::with_capacity(VOCABULARY);
    let mut total = 0.0;
    for r in 0..VOCABULARY {
        total += 1.0 / ((r + 1) as f64).powf(EXPONENT);
        cdf.push(total);
    }
    let per_file = (mb * 1_000_000 / files) as u64;
    let mut rng = SplitMix(seed);
    for path in &paths {
        let mut out = BufWriter::new(std::fs::File::create(path)?);
        let mut written = 0u64;
        while written < per_file {
            let n = 6 + rng.next_u64() % 12;
            for i in 0..n {
                let u = rng.next_f64() * total;
                let r = cdf.partition_point(|&c| c < u).min(VOCABULARY - 1);
                if i > 0 {
                    out.write_all(b" ")?;
                    written += 1;
                }
                out.write_all(words[r].as_bytes())?;
                written += words[r].len() as u64;
            }
            out.write_all(b"\n")?;
            written += 1;
        }
        out.flush()?;
    }
    std::fs::write(&marker, stamp)?;
    Ok(paths)
}
