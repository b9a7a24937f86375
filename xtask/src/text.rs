//! `cargo xtask gen-data text`: the seeded Zipf word corpus of the dask-bag
//! word-count benchmark (`cargo bench -p dask-bag --bench wordcount`), written
//! as N files of plain text, one sentence a line.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

pub mod generate;

const USAGE: &str = "usage: cargo xtask gen-data text [--mb N] [--files F] [--seed S] [--out DIR]";

/// Parsed arguments of `gen-data text`.
#[derive(Debug, PartialEq)]
struct Args {
    mb: usize,
    files: usize,
    seed: u64,
    out: PathBuf,
}

fn parse_args(args: &[String], root: &Path) -> Result<Args> {
    let (mut mb, mut files, mut seed, mut out) = (200usize, 16usize, 42u64, None);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .with_context(|| format!("`{name}` needs a value\n{USAGE}"))
        };
        let number = |name: &str, v: &str| -> Result<u64> {
            v.parse()
                .with_context(|| format!("`{name} {v}`: expected an unsigned integer"))
        };
        match flag.as_str() {
            "--mb" => mb = number("--mb", value("--mb")?)? as usize,
            "--files" => files = number("--files", value("--files")?)? as usize,
            "--seed" => seed = number("--seed", value("--seed")?)?,
            "--out" => out = Some(PathBuf::from(value("--out")?)),
            other => bail!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    if mb == 0 || files == 0 {
        bail!("`--mb` and `--files` must be at least 1\n{USAGE}");
    }
    let out = out.unwrap_or_else(|| root.join("data").join(format!("text-{mb}mb")));
    Ok(Args {
        mb,
        files,
        seed,
        out,
    })
}

/// Runs `gen-data text ARGS` from the workspace root `root`.
pub fn run(args: &[String], root: &Path) -> Result<()> {
    let args = parse_args(args, root)?;
    let paths = generate::generate(&args.out, args.mb, args.files, args.seed)
        .with_context(|| format!("writing the corpus under {}", args.out.display()))?;
    let bytes: u64 = paths
        .iter()
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum();
    println!(
        "wrote {} files ({:.1} MB) to {}",
        paths.len(),
        bytes as f64 / 1e6,
        args.out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bad_flags() {
        let root = Path::new("/ws");
        let args = parse_args(&[], root).unwrap();
        assert_eq!((args.mb, args.files, args.seed), (200, 16, 42));
        assert_eq!(args.out, root.join("data/text-200mb"));
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(parse_args(&s(&["--mb", "x"]), root).is_err());
        assert!(parse_args(&s(&["--files", "0"]), root).is_err());
        assert!(parse_args(&s(&["--bogus"]), root).is_err());
    }

    #[test]
    fn seeded_zipf_words_in_every_file() {
        let dir = std::env::temp_dir().join(format!("xtask-text-{}", std::process::id()));
        let paths = generate::generate(&dir, 1, 4, 7).unwrap();
        assert_eq!(paths.len(), 4);
        let text: String = paths
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect();
        // Seeded: the same call reuses (and would rewrite) the same text.
        let again = generate::generate(&dir, 1, 4, 7).unwrap();
        assert_eq!(again, paths);
        let words: Vec<&str> = text.split_whitespace().collect();
        assert!(
            text.len() >= 1_000_000 && text.len() < 1_100_000,
            "{}",
            text.len()
        );
        // Zipf: the most common word (rank 0) is far more frequent than rank 100.
        let count = |w: &str| words.iter().filter(|x| **x == w).count();
        assert!(count(&generate::word(0)) > 20 * count(&generate::word(100)).max(1));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
