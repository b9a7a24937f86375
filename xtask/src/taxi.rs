//! `cargo xtask gen-data taxi`: a seeded synthetic copy of the NYC yellow taxi
//! trip records of January 2020 (`yellow_tripdata_2020-01.csv`).
//!
//! Same 18 columns in the same order, values in the real ranges and formats
//! (whole amounts written without decimals, as in the real file, so a sample
//! of the first rows infers the same dtypes), pickups spread over the month in
//! order. Like the real file, the last rows (about 1%) have `VendorID`,
//! `passenger_count`, `RatecodeID`, `store_and_fwd_flag` and `payment_type`
//! empty: a dtype guessed from the start of the file meets missing values at
//! its end. The default size is the real month's: 6.4M rows, about 570 MB.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

pub mod generate;

use generate::{write_csv, DEFAULT_ROWS, DEFAULT_SEED};

const USAGE: &str = "usage: cargo xtask gen-data taxi [--rows N] [--seed S] [--out PATH]";

/// Parsed arguments of `gen-data taxi`.
#[derive(Debug)]
struct Args {
    rows: u64,
    seed: u64,
    out: PathBuf,
}

fn parse_args(args: &[String], root: &Path) -> Result<Args> {
    let mut rows = DEFAULT_ROWS;
    let mut seed = DEFAULT_SEED;
    let mut out = None;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .with_context(|| format!("`{name}` needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--rows" => {
                let v = value("--rows")?;
                rows = parse_count(v).with_context(|| {
                    format!("`--rows {v}`: expected a row count such as 100000 or 6.4e6")
                })?;
            }
            "--seed" => {
                let v = value("--seed")?;
                seed = v
                    .parse()
                    .with_context(|| format!("`--seed {v}`: expected an unsigned integer"))?;
            }
            "--out" => out = Some(PathBuf::from(value("--out")?)),
            other => bail!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    let out = out.unwrap_or_else(|| {
        root.join("data")
            .join(format!("yellow_tripdata_synthetic_{rows}.csv"))
    });
    Ok(Args { rows, seed, out })
}

/// A count written as an integer or in scientific notation (`6.4e6`).
fn parse_count(s: &str) -> Result<u64> {
    if let Ok(n) = s.parse::<u64>() {
        return Ok(n);
    }
    let f: f64 = s.parse()?;
    if !(f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f < 1e15) {
        bail!("not a whole, non-negative count");
    }
    Ok(f as u64)
}

/// Runs `gen-data taxi ARGS` from the workspace root `root`.
pub fn run(args: &[String], root: &Path) -> Result<()> {
    let args = parse_args(args, root)?;
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the directory {}", dir.display()))?;
    }
    let file =
        File::create(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    write_csv(&mut w, args.rows, args.seed)
        .and_then(|()| w.flush())
        .with_context(|| format!("writing {}", args.out.display()))?;
    let bytes = std::fs::metadata(&args.out)?.len();
    println!(
        "wrote {} rows ({:.1} MB) to {}",
        args.rows,
        bytes as f64 / 1e6,
        args.out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use generate::HEADER;

    fn sample_csv(rows: u64, seed: u64) -> String {
        let mut out = Vec::new();
        write_csv(&mut out, rows, seed).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn eighteen_columns_and_missing_vendor_fields_at_the_end() {
        let text = sample_csv(1000, 7);
        let mut lines = text.lines();
        assert_eq!(lines.next().unwrap(), HEADER);
        let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
        assert_eq!(rows.len(), 1000);
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(row.len(), 18, "row {i}: {row:?}");
            let missing = i >= 990;
            for col in [0, 3, 5, 6, 9] {
                assert_eq!(row[col].is_empty(), missing, "row {i} col {col}: {row:?}");
            }
            let total: f64 = row[16].parse().unwrap();
            let parts: f64 = [10, 11, 12, 13, 14, 15, 17]
                .iter()
                .map(|&c| row[c].parse::<f64>().unwrap())
                .sum();
            assert!((total - parts).abs() < 0.011, "row {i}: {row:?}");
            assert!(row[1] <= row[2], "pickup after dropoff: {row:?}");
            assert!(row[1].starts_with("2020-01-"), "{row:?}");
        }
    }

    #[test]
    fn seeded_and_about_ninety_bytes_a_row() {
        assert_eq!(sample_csv(200, 1), sample_csv(200, 1));
        assert_ne!(sample_csv(200, 1), sample_csv(200, 2));
        let len = sample_csv(10_000, 3).len();
        assert!((70..110).contains(&(len / 10_000)), "{len}");
    }

    #[test]
    fn arguments() {
        let root = Path::new("/r");
        let a = parse_args(&["--rows".into(), "6.4e6".into()], root).unwrap();
        assert_eq!(a.rows, 6_400_000);
        assert_eq!(
            a.out,
            Path::new("/r/data/yellow_tripdata_synthetic_6400000.csv")
        );
        assert!(parse_args(&["--rows".into(), "x".into()], root).is_err());
        assert!(parse_args(&["--rows".into()], root).is_err());
        assert!(parse_args(&["--bogus".into()], root).is_err());
    }
}
