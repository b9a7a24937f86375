//! The seed's futures flow on a cluster of processes: a `dask scheduler`
//! process, two worker processes and a client process, all over TCP.
//!
//! The workers and the client are this test binary run again (ignored helper
//! tests: `processes::test_binary_worker` and `seed_client` below), so they link the seed's ops (`inc`, `random_matrix`,
//! `shape_of`). The client runs in a process of its own so that the bytes
//! its TCP sockets received are the bytes that reached the client: the
//! 800 MB matrix when it gathers it, almost nothing when it asks a worker
//! for the shape.

use dask::array::ndarray::ArrayD;
use dask::distributed::{Client, FutureStatus, ReturnWhen};

use crate::processes::{helper, line_with, spawn, worker_of_this_binary, Procs, SCHEDULER_ENV};

/// The matrix's side for the client process (the seed's 10000).
const SIDE_ENV: &str = "DASK_RS_IT_SEED_SIDE";

fn inc(x: i64) -> i64 {
    x + 1
}
dask::core::register_op!(inc);

/// A seeded uniform `n x n` matrix (splitmix64), the seed's `random`.
fn random_matrix(n: u64, seed: u64) -> ArrayD<f64> {
    let mut s = seed;
    let data: Vec<f64> = (0..n * n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect();
    ArrayD::from_shape_vec(vec![n as usize, n as usize], data).expect("n * n values")
}
dask::core::register_op!(random_matrix);

/// Reads the matrix in place on its worker (`Shared`: no 800 MB copy).
fn shape_of(a: dask::core::Shared<ArrayD<f64>>) -> Vec<usize> {
    a.shape().to_vec()
}
dask::core::register_op!(shape_of);

/// Bytes received so far on this process's open TCP sockets (the kernel's
/// `TCP_INFO` count of each socket in `/proc/self/fd`). The client keeps its
/// connections to workers open, so a difference of two readings is what
/// reached this process in between.
#[allow(unsafe_code)] // getsockopt(TCP_INFO): no safe wrapper in std
fn tcp_bytes_received() -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd (Linux)") {
        let Ok(entry) = entry else { continue };
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|l| l.to_string_lossy().starts_with("socket:"));
        let Some(fd) = entry.file_name().to_str().and_then(|f| f.parse().ok()) else {
            continue;
        };
        if !is_socket {
            continue;
        }
        // SAFETY: `info` is a plain C struct the kernel fills (up to `len`
        // bytes); `fd` is one of this process's descriptors, only queried.
        let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                (&mut info as *mut libc::tcp_info).cast(),
                &mut len,
            )
        };
        if rc == 0 {
            total += info.tcpi_bytes_received;
        }
    }
    total
}

#[test]
fn seed_futures_flow_on_processes_moves_the_matrix_only_when_gathered() {
    let side = 10_000u64;
    let (scheduler, addr) = spawn(
        &["scheduler", "--port", "0", "--dashboard-port", "0"],
        "scheduler at ",
    );
    let mut procs = Procs(vec![scheduler]);
    for _ in 0..2 {
        procs.0.push(worker_of_this_binary(&addr));
    }
    let mut client = helper(
        "seed_processes::seed_client",
        &addr,
        &[(SIDE_ENV, side.to_string())],
    );
    let report = line_with(&mut client, "seed-report ");
    let status = client.wait().unwrap();
    assert!(status.success(), "the client process failed: {status}");
    let field = |name: &str| -> u64 {
        report
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {report:?}"))
    };
    let matrix_bytes = side * side * 8;
    // Gathering brought the whole matrix to the client process...
    let gathered = field("gathered");
    assert!(gathered >= matrix_bytes, "{report}");
    // ... and asking for its shape on the cluster did not (a few messages).
    let remote = field("shape");
    assert!(remote < 1 << 20, "{report}");
    drop(procs);
}

/// Not a test: the client process of the seed test. Checks the flow and
/// prints `seed-report gathered=BYTES shape=BYTES`: what this process received
/// while gathering the matrix, and while asking for its shape remotely.
#[test]
#[ignore = "helper process of the seed-on-processes test"]
fn seed_client() {
    let Ok(addr) = std::env::var(SCHEDULER_ENV) else {
        return;
    };
    let n: u64 = std::env::var(SIDE_ENV).unwrap().parse().unwrap();
    let client = Client::connect(&addr).unwrap();

    // submit(inc, 9): pending, then 10 and finished.
    let x = client.submit(inc, (9i64,)).unwrap();
    let first = x.status();
    assert!(
        matches!(first, FutureStatus::Pending | FutureStatus::Finished),
        "{first:?}"
    );
    assert_eq!(x.result().unwrap(), 10);
    assert_eq!(x.status(), FutureStatus::Finished);

    // The seeded matrix: gathered, its shape is (n, n) and its values are
    // the same function's here (the oracle).
    let m = client.submit(random_matrix, (n, 42u64)).unwrap();
    client
        .wait(
            std::slice::from_ref(&m),
            Some(dask_testing::test_timeout()),
            ReturnWhen::AllCompleted,
        )
        .unwrap();
    let before = tcp_bytes_received();
    let whole = m.result().unwrap();
    let gathered = tcp_bytes_received() - before;
    assert_eq!(whole.shape(), &[n as usize, n as usize]);
    assert_eq!(whole, random_matrix(n, 42));
    drop(whole);

    // Its shape computed where the matrix lives: the matrix stays there.
    let before = tcp_bytes_received();
    let shape = client.submit(shape_of, (&m,)).unwrap().result().unwrap();
    let remote = tcp_bytes_received() - before;
    assert_eq!(shape, vec![n as usize, n as usize]);
    println!("seed-report gathered={gathered} shape={remote}");
}
