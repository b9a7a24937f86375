//! Fuzzes the wire decoders (frames, message headers, task specs) for a time
//! budget: `cargo xtask fuzz [--secs N] [--seed S]`. Exits 1 on any finding,
//! after writing each input to `fuzz-findings/` under the target directory.

use std::time::Duration;

fn main() -> std::process::ExitCode {
    let mut secs = 60u64;
    let mut seed = 0x5eed_u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let value = args.next().and_then(|v| v.parse::<u64>().ok());
        match (a.as_str(), value) {
            ("--secs", Some(v)) => secs = v,
            ("--seed", Some(v)) => seed = v,
            _ => {
                eprintln!("usage: fuzz [--secs N] [--seed S]");
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    let report = dask_distributed::fuzz::run(seed, Duration::from_secs(secs), u64::MAX, true);
    println!(
        "fuzzed {} inputs in {secs} s (seed {seed}): {} findings; reached {:?}",
        report.iterations,
        report.findings.len(),
        report.depth
    );
    if report.findings.is_empty() {
        return std::process::ExitCode::SUCCESS;
    }
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "target".into())
        .join("fuzz-findings");
    let _ = std::fs::create_dir_all(&dir);
    for (i, (input, message)) in report.findings.iter().enumerate() {
        let path = dir.join(format!("finding-{i}.bin"));
        let _ = std::fs::write(&path, input);
        println!("  {}: panicked: {message}", path.display());
    }
    std::process::ExitCode::FAILURE
}
