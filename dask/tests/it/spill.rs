//! A dataset twice the sum of the workers' memory limits, persisted on two
//! `dask worker` processes and then reduced: the workers spill to disk and
//! read back, the answer equals the sync scheduler's, and no worker's
//! resident memory ever goes above its terminate threshold (sampled from
//! `/proc` while it runs; a worker that crossed it would also have stopped).

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dask::array::{random, Reduce};
use dask::distributed::Client;

use super::processes::{spawn, Procs};

const LIMIT: u64 = 192 * 1024 * 1024;

/// Resident memory of process `pid` in bytes (`VmRSS`), if it is alive.
fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// A worker without a nanny (its pid is the worker's), with LIMIT.
fn spawn_worker(addr: &str, dir: &std::path::Path) -> Child {
    let limit = LIMIT.to_string();
    let dir = dir.to_str().expect("a UTF-8 temporary directory");
    let args = [
        "worker",
        addr,
        "--nthreads",
        "1",
        "--no-nanny",
        "--memory-limit",
        &limit,
        "--local-directory",
        dir,
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_dask"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the dask binary");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("piped stdout");
    let mut reader = std::io::BufReader::new(stdout);
    std::io::BufRead::read_line(&mut reader, &mut line).expect("read the address line");
    assert!(line.starts_with("worker at "), "unexpected output {line:?}");
    // Keep reading so the worker never writes into a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    child
}

#[test]
fn twice_the_cluster_memory_is_reduced_via_spilling_within_the_rss_bound() {
    let dir = std::env::temp_dir().join(format!("dask-proc-spill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (scheduler, addr) = spawn(&["scheduler", "--port", "0"], "scheduler at ");
    let mut procs = Procs(vec![scheduler]);
    for _ in 0..2 {
        procs.0.push(spawn_worker(&addr, &dir));
    }
    let pids: Vec<u32> = procs.0[1..].iter().map(Child::id).collect();

    // Samples each worker's resident memory until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, peak, pids) = (stop.clone(), peak.clone(), pids.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for &pid in &pids {
                    if let Some(bytes) = rss(pid) {
                        peak.fetch_max(bytes, Ordering::Relaxed);
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };

    // 2 x 192 MiB of limits; the data: 768 MiB in 384 blocks of 2 MiB (small
    // blocks: what a worker adds between two looks at its memory is small).
    let x = random::random(&[8192, 12288], 512, 5).unwrap();
    assert_eq!(x.nbytes() as u64, 4 * LIMIT);
    let client = Arc::new(Client::connect(&addr).unwrap());
    let sum = {
        let (client, x) = (client.clone(), x.clone());
        // A bound against hangs, not a timing assertion.
        dask_testing::within(Duration::from_secs(600), move || {
            let held = client.persist(&x).map_err(|e| e.to_string())?;
            let total = held
                .sum(Reduce::all().split_every(8))
                .map_err(|e| e.to_string())?;
            total
                .compute_scalar_with(&*client)
                .map_err(|e| e.to_string())
        })
    };
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let exits: Vec<_> = procs.0[1..]
        .iter_mut()
        .map(|w| w.try_wait().unwrap())
        .collect();
    let peak = peak.load(Ordering::Relaxed);
    let sum = sum.unwrap_or_else(|e| panic!("{e} (worker exits {exits:?}, peak RSS {peak})"));

    let expected = x
        .sum(Reduce::all().split_every(8))
        .unwrap()
        .compute_scalar_with(&dask::SyncScheduler::new())
        .unwrap();
    assert_eq!(sum, expected);
    assert!(
        exits.iter().all(Option::is_none),
        "a worker stopped during the run: {exits:?}"
    );
    let terminate = (LIMIT as f64 * 0.95) as u64;
    eprintln!(
        "spill over processes: peak worker RSS {} MiB, terminate threshold {} MiB",
        peak >> 20,
        terminate >> 20
    );
    assert!(peak > 0, "no RSS sample was read");
    assert!(peak <= terminate, "peak RSS {peak} above {terminate}");
    drop(client);
    drop(procs);
    let _ = std::fs::remove_dir_all(&dir);
}
