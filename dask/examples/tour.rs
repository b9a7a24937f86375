//! The seed notebook, replayed in Rust on an embedded `LocalCluster`: a
//! client and its dashboard, futures, a big random matrix gathered versus
//! reduced remotely, a taxi CSV read as a partitioned dataframe (with the
//! dtype-mismatch error a user meets, and its fix), a bag word count,
//! coordination between tasks, and a counter actor. Nothing is downloaded:
//! the data is generated.
//!
//! ```text
//! cargo run --example tour            # the full tour (a 10000 x 10000 matrix, ~280 MB of CSV)
//! cargo run --example tour -- --small # the same steps on small data (what CI runs)
//! ```
//!
//! Each step prints a line starting with `[step]` and its result; the test
//! `dask/tests/it/tour.rs` runs `--small` and checks every step's line.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dask::array::ndarray::ArrayD;
use dask::dataframe::polars::prelude::{col, DataType, IntoLazy};
use dask::dataframe::{read_csv, Agg, CsvOptions};
use dask::distributed::{Client, Coordinator, Lock, Queue, Variable};
use dask::prelude::*;

#[allow(dead_code)]
#[path = "../../xtask/src/taxi/generate.rs"]
mod taxi;

/// Sizes of one run.
struct Sizes {
    matrix: u64,
    taxi_rows: u64,
    lock_tasks: i64,
}

fn inc(x: i64) -> i64 {
    x + 1
}
dask::core::register_op!(inc);

/// An `n x n` matrix of seeded uniform numbers in [0, 1) (SplitMix64).
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

fn shape_of(a: ArrayD<f64>) -> Vec<usize> {
    a.shape().to_vec()
}
dask::core::register_op!(shape_of);

/// Adds one to a counter kept in a cluster `Variable`, under a cluster `Lock`.
/// (A panic in a task fails that task, with its message, on the client.)
fn locked_increment(i: i64) -> i64 {
    let here = Coordinator::for_task().expect("runs in a task");
    let lock = Lock::new(&here, "tour-counter-lock").expect("a lock handle");
    let counter = Variable::new(&here, "tour-counter").expect("a variable handle");
    let _held = lock
        .lock(Duration::from_secs(60))
        .expect("the lock within 60 s");
    let value: i64 = counter.get(Duration::from_secs(60)).expect("the counter");
    counter.set(value + 1).expect("setting the counter");
    i
}
dask::core::register_op!(locked_increment);

/// Puts `n` squares on the cluster queue `tour-squares`.
fn produce_squares(n: i64) -> i64 {
    let here = Coordinator::for_task().expect("runs in a task");
    let queue = Queue::new(&here, "tour-squares", Some(16)).expect("a queue handle");
    for i in 0..n {
        queue
            .put(i * i, Duration::from_secs(60))
            .expect("room in the queue");
    }
    n
}
dask::core::register_op!(produce_squares);

/// An actor: a counter living on one worker, whose methods run there one
/// call at a time.
#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
struct Counter {
    n: i64,
}

impl Counter {
    fn increment(&mut self) -> i64 {
        self.n += 1;
        self.n
    }
}
dask::distributed::register_actor!(Counter { increment });

fn step(name: &str) {
    println!("\n== {name}");
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

/// The synthetic taxi CSV, written once and reused (under the target directory).
fn taxi_csv(rows: u64) -> std::io::Result<PathBuf> {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("dask-tour");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("yellow_tripdata_2020-01-{rows}.csv"));
    if !path.exists() {
        let part = path.with_extension("partial");
        let mut w = std::io::BufWriter::new(std::fs::File::create(&part)?);
        taxi::write_csv(&mut w, rows, taxi::DEFAULT_SEED)?;
        w.flush()?;
        drop(w);
        std::fs::rename(&part, &path)?;
    }
    Ok(path)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let small = std::env::args().any(|a| a == "--small");
    let sizes = if small {
        Sizes {
            matrix: 1_000,
            taxi_rows: 60_000,
            lock_tasks: 50,
        }
    } else {
        Sizes {
            matrix: 10_000,
            taxi_rows: 3_000_000,
            lock_tasks: 200,
        }
    };
    let started = Instant::now();

    step("Client(): a scheduler and workers in this process, with a dashboard");
    let client = Client::new()?;
    println!("{client}");
    if let Some(link) = client.cluster().and_then(|c| c.dashboard_link()) {
        println!("[client] dashboard at {link}");
    }

    step("submit(inc, 9): a future, pending then finished");
    let x = client.submit(inc, (9i64,))?;
    println!("future {} status: {:?}", x.key(), x.status());
    let ten = x.result()?;
    println!("[submit] inc(9) = {ten}, status now {:?}", x.status());

    step("A random matrix on the cluster: gather it, or ask for its shape remotely");
    // A second client connected over TCP, as from another machine: results it
    // gathers cross the network (the first client shares the workers' memory).
    let remote = Client::connect(client.scheduler_addr())?;
    let n = sizes.matrix;
    let m = remote.submit(random_matrix, (n, 42u64))?;
    let t = Instant::now();
    let whole = m.result()?;
    let gathered = t.elapsed();
    let t = Instant::now();
    let shape = remote.submit(shape_of, (&m,))?.result()?;
    let remotely = t.elapsed();
    println!(
        "[matrix] {n}x{n} ({} MB): shape {:?} by gathering the matrix in {}, {:?} computed on the cluster in {}",
        n * n * 8 / 1_000_000,
        whole.shape(),
        secs(gathered),
        shape,
        secs(remotely)
    );
    drop((whole, m));

    step("dask.array: x = random((n, n)); (x + x.T).sum() on the cluster");
    let chunk = (n / 10).max(1) as usize;
    let xa = dask::array::random::random(&[n as usize, n as usize], chunk, 0)?;
    let total = (&xa + &xa.t())?.sum(None)?;
    let t = Instant::now();
    let on_cluster = total.compute_scalar_with(&client)?;
    let cluster_time = t.elapsed();
    let on_sync = total.compute_scalar_with(&SyncScheduler::new())?;
    println!(
        "[array] {xa}\n[array] (x + x.T).sum() = {on_cluster:.3} on the cluster in {} (sync scheduler: {on_sync:.3})",
        secs(cluster_time)
    );
    assert_eq!(
        on_cluster, on_sync,
        "the cluster and the sync scheduler disagree"
    );

    step("dask.dataframe: read_csv(.., blocksize=12e6) on a generated taxi file");
    let t = Instant::now();
    let path = taxi_csv(sizes.taxi_rows)?;
    let size = std::fs::metadata(&path)?.len();
    println!(
        "{} ({} MB, {} rows) ready in {}",
        path.display(),
        size / 1_000_000,
        sizes.taxi_rows,
        secs(t.elapsed())
    );
    // The seed's 12e6 bytes per block on ~570 MB; scaled on small data.
    let blocksize = if small { size / 50 + 1 } else { 12_000_000 };
    let path = path.to_str().ok_or("a non-UTF-8 path")?.to_owned();
    // Dtypes are inferred from a sample of the first bytes (256 kB by default).
    // Here the sample is two rows, where fares and tolls happen to be whole
    // numbers: like Dask on a file whose first rows are unrepresentative.
    let opts = CsvOptions::default().blocksize(Some(blocksize)).sample(520);
    let df = read_csv(&path, &opts)?;
    println!("{df}");
    println!("[dataframe] npartitions={}", df.npartitions());

    step("A computation over every partition meets a dtype the sample did not show");
    // `count` (the non-null values of each column) parses every column of
    // every block. (`len`, or a computation on a few columns, reads only the
    // columns it needs: `read_csv` pushes the projection down.) The first
    // block to fail names its mismatched columns; apply the fix it names and
    // try again, as one would at a prompt.
    let mut opts = opts.clone();
    let mut fixed = df;
    let mut rounds = 0;
    loop {
        let e = match fixed.count()?.compute_with(&client) {
            Ok(_) => {
                let rows = fixed.len().compute_with(&client)?;
                println!("[dtype] every block reads: {rows} rows");
                break;
            }
            Err(e) => e,
        };
        rounds += 1;
        let Some(dask::dataframe::Error::DtypeMismatch { columns, .. }) =
            dask::dataframe::Error::find(&e)
        else {
            return Err(e.into());
        };
        if rounds > 18 {
            return Err(e.into());
        }
        println!("{e}");
        // The fix the error names: read those columns with the dtype found.
        for (column, found, _expected) in columns {
            let dtype = if found.contains("str") {
                DataType::String
            } else {
                DataType::Float64
            };
            println!("[dtype] fix: .dtype({column:?}, {dtype:?})");
            opts = opts.dtype(column, dtype);
        }
        fixed = read_csv(&path, &opts)?;
    }
    let total = fixed.column("tolls_amount")?.sum()?.compute_with(&client)?;
    println!(
        "[dtype] with the fix, tolls_amount sums to {:?}",
        total.value()
    );

    step("map_partitions, head(), VendorID.unique(), a groupby");
    // A new column per partition, with polars expressions.
    let before_tip = fixed.map_partitions(
        |p| {
            p.lazy()
                .select([
                    col("VendorID"),
                    (col("total_amount") - col("tip_amount")).alias("paid_before_tip"),
                ])
                .collect()
        },
        None,
    )?;
    println!("{before_tip}");
    let head = fixed.head_with(5, &client)?;
    println!("{head}");
    let vendors = fixed.column("VendorID")?.unique()?.compute_with(&client)?;
    let vendors: Vec<String> = (0..vendors.len())
        .map(|i| vendors.get(i).map(|v| v.to_string()))
        .collect::<Result<_, _>>()?;
    println!("[dataframe] VendorID.unique() = {vendors:?}");
    let tips = fixed
        .groupby(&["passenger_count"])?
        .agg(&[("tip_amount", Agg::Mean)])?
        .compute_with(&client)?;
    println!("[dataframe] tip_amount mean by passenger_count:\n{tips}");

    step("dask.bag: a word count");
    let words = dask::bag::Bag::from_sequence(
        (0..2_000).map(|i| format!("the quick fox {} jumps over the lazy dog {}", i % 7, i % 3)),
        8,
    )?;
    let top = words
        .flat_map(dask::bag::words)
        .frequencies()
        .topk(3, |(w, c)| (*c, std::cmp::Reverse(w.clone())))?
        .compute_with(&client)?;
    println!("[bag] top 3 words: {top:?}");

    step("Coordination: a Lock-protected counter, a Queue between a task and the client");
    Variable::new(&client, "tour-counter")?.set(0i64)?;
    let incs = client.map(locked_increment, 0..sizes.lock_tasks)?;
    client.gather(&incs)?;
    let counter: i64 = Variable::new(&client, "tour-counter")?.get(Duration::from_secs(60))?;
    println!(
        "[coordination] {} tasks incremented the counter under a Lock: {counter}",
        sizes.lock_tasks
    );
    let producer = client.submit(produce_squares, (10i64,))?;
    let queue = Queue::new(&client, "tour-squares", Some(16))?;
    let squares: Vec<i64> = (0..10)
        .map(|_| queue.get::<i64>(Duration::from_secs(60)))
        .collect::<Result<_, _>>()?;
    producer.result()?;
    println!("[coordination] squares from the queue: {squares:?}");

    step("Actors: a counter on one worker, called from the client");
    let counter = client.submit_actor(Counter::default())?;
    let calls = (0..5)
        .map(|_| counter.call(Counter::increment, ()))
        .collect::<Result<Vec<_>, _>>()?;
    let seen = calls
        .into_iter()
        .map(|call| call.result())
        .collect::<Result<Vec<i64>, _>>()?;
    println!(
        "[actor] 5 increments saw {seen:?}; the counter is at {}",
        counter.state()?.result()?.n
    );
    drop(counter);

    step("Shutdown");
    drop(remote);
    client.shutdown();
    println!("[done] the tour took {}", secs(started.elapsed()));
    Ok(())
}
