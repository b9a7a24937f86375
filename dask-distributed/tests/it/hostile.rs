//! A running scheduler meets hostile peers: random bytes, a wrong preamble,
//! truncated and oversized frames, undecodable headers, and well-formed
//! messages that make no sense (a client claiming finished tasks, graphs with
//! missing dependencies, cycles, garbage task specs, releases of unknown keys).
//! Each is refused or answered without harm, and the cluster keeps computing
//! correctly for a well-behaved client (checked against the sync scheduler).

use std::time::Duration;

use bytes::Bytes;
use dask_core::{delayed, Collection, Key};
use dask_distributed::messages::{self, SubmittedTask, ToClient, ToScheduler};
use dask_distributed::protocol::{self, Limits, Message, Role, MAGIC, PROTOCOL_VERSION};
use dask_distributed::scheduler::state::Outcome;
use dask_distributed::{Client, LocalCluster};
use dask_sync_scheduler::SyncScheduler;
use dask_testing::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn inc(x: i64) -> i64 {
    x + 1
}
dask_core::register_op!(inc);

/// Writes `bytes` on a fresh connection, then reads until the server closes
/// (or 5 s pass): a server that hangs up on garbage ends this quickly.
async fn raw(addr: &str, bytes: Vec<u8>) {
    let Ok(mut s) = TcpStream::connect(addr).await else {
        return;
    };
    let _ = s.write_all(&bytes).await;
    let mut sink = vec![0u8; 1 << 16];
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(n) = s.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

fn preamble() -> Vec<u8> {
    let mut p = MAGIC.to_vec();
    p.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    p
}

/// A frame header announcing `n` frames of the given lengths.
fn frame_lengths(lengths: &[u64]) -> Vec<u8> {
    let mut out = (lengths.len() as u32).to_le_bytes().to_vec();
    for l in lengths {
        out.extend_from_slice(&l.to_le_bytes());
    }
    out
}

/// Completes a real handshake as `role`, sends `messages`, then waits for the
/// server to answer or hang up (at most 2 s).
async fn after_handshake(addr: &str, role: Role, messages: Vec<Message>) {
    let Ok(conn) = protocol::connect(addr, role, Limits::default()).await else {
        return;
    };
    let (mut reader, mut writer) = conn.split();
    let _ = writer.send_batch(&messages).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while reader.recv().await.is_ok() {}
    })
    .await;
}

fn header(msg: &ToScheduler) -> Message {
    Message::new(protocol::encode("hostile", msg).unwrap(), vec![])
}

fn nonsense_messages(rng: &mut Rng) -> Vec<Vec<Message>> {
    let key = |name: &str| Key::new(name, [0]);
    let task = |k: Key, deps: Vec<Key>, spec: Vec<u8>| SubmittedTask::new(k, deps, spec, 0);
    vec![
        // Undecodable headers.
        vec![Message::new(Bytes::from(rng.bytes(40)), vec![])],
        vec![Message::new(Bytes::new(), vec![Bytes::from(rng.bytes(10))])],
        // A client claiming results and failures of tasks it never submitted.
        vec![
            header(&ToScheduler::TaskFinished {
                key: key("never-submitted"),
                run_id: 1,
                nbytes: 8,
                timing: dask_distributed::task_stream::TaskTiming {
                    start: 1.0,
                    stop: 2.0,
                    thread: 0,
                },
                value: None,
            }),
            header(&ToScheduler::TaskErred {
                key: key("never-submitted"),
                run_id: 1,
                op: "x".into(),
                message: "y".into(),
                timing: None,
            }),
        ],
        // Releasing and asking about unknown keys.
        vec![
            header(&ToScheduler::ReleaseKeys {
                keys: vec![key("unknown")],
            }),
            header(&ToScheduler::WhoHas {
                id: 7,
                keys: vec![key("unknown")],
            }),
        ],
        // A graph whose task depends on a key nobody defines.
        vec![header(&ToScheduler::UpdateGraph {
            tasks: vec![task(key("orphan"), vec![key("missing-dep")], vec![])],
            wanted: vec![key("orphan")],
        })],
        // A two-task cycle.
        vec![header(&ToScheduler::UpdateGraph {
            tasks: vec![
                task(key("cyc-a"), vec![key("cyc-b")], vec![]),
                task(key("cyc-b"), vec![key("cyc-a")], vec![]),
            ],
            wanted: vec![key("cyc-a")],
        })],
        // A task depending on itself, and a wanted key not in the graph.
        vec![header(&ToScheduler::UpdateGraph {
            tasks: vec![task(key("self"), vec![key("self")], vec![])],
            wanted: vec![key("self"), key("not-in-graph")],
        })],
        // A runnable task whose spec is garbage: it must fail, not kill a worker.
        vec![header(&ToScheduler::UpdateGraph {
            tasks: vec![task(key("garbage-spec"), vec![], rng.bytes(64))],
            wanted: vec![key("garbage-spec")],
        })],
        // A client registering itself as a worker.
        vec![header(&ToScheduler::RegisterWorker {
            nthreads: 4,
            data_addr: "127.0.0.1:1".into(),
        })],
    ]
}

/// A client speaking the protocol itself submits invalid graphs: each wanted
/// key is answered, to it, with an error naming what was wrong (never a
/// hang, never a scheduler bug). Waits at most 30 s for all the answers.
async fn invalid_graphs_are_refused_with_reasons(addr: &str) {
    let key = |name: &str| Key::new(name, [1]);
    let task = |k: &str, deps: &[&str]| {
        SubmittedTask::new(key(k), deps.iter().map(|d| key(d)).collect(), vec![], 0)
    };
    let graphs = [
        (
            vec![task("orphan", &["missing-dep"])],
            "orphan",
            "missing-dep",
        ),
        (
            vec![task("cyc-a", &["cyc-b"]), task("cyc-b", &["cyc-a"])],
            "cyc-a",
            "cycle",
        ),
        (vec![task("self", &["self"])], "self", "depends on itself"),
        (vec![], "not-in-graph", "neither in the submission"),
    ];
    let conn = protocol::connect(addr, Role::Client, Limits::default())
        .await
        .unwrap();
    let (mut reader, mut writer) = conn.split();
    let submissions: Vec<Message> = graphs
        .iter()
        .map(|(tasks, wanted, _)| {
            header(&ToScheduler::UpdateGraph {
                tasks: tasks.clone(),
                wanted: vec![key(wanted)],
            })
        })
        .collect();
    writer.send_batch(&submissions).await.unwrap();
    let mut pending: Vec<(&str, &str)> = graphs.iter().map(|(_, k, says)| (*k, *says)).collect();
    let answered = tokio::time::timeout(Duration::from_secs(30), async {
        while !pending.is_empty() {
            let m = reader.recv().await.expect("the scheduler hung up");
            let Ok(ToClient::Report {
                key: k, outcome, ..
            }) = messages::header("report", &m)
            else {
                continue;
            };
            let Outcome::Erred(error) = outcome else {
                panic!("{k} was accepted: {outcome:?}");
            };
            let i = pending
                .iter()
                .position(|(name, _)| key(name) == k)
                .unwrap_or_else(|| panic!("unexpected report for {k}: {error:?}"));
            let (_, says) = pending.remove(i);
            assert!(
                error.message.contains(says) && !error.message.contains("bug in dask-rs"),
                "{k}: {error:?} does not say {says:?}"
            );
        }
    })
    .await;
    assert!(answered.is_ok(), "no answer for {pending:?}");
}

#[test]
fn hostile_peers_leave_the_cluster_serving() {
    let cluster = LocalCluster::builder()
        .n_workers(2)
        .threads_per_worker(1)
        .start()
        .unwrap();
    let addr = cluster.scheduler_addr();
    let client = Client::connect(&addr).unwrap();
    let check = |round: i64| {
        let mut x = delayed(inc).call((round,));
        for _ in 0..20 {
            x = delayed(inc).call((&x,));
        }
        let want = x.compute_with(&SyncScheduler::new()).unwrap();
        assert_eq!(x.compute_with(&client).unwrap(), want, "round {round}");
    };
    check(0);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rng = Rng::new(0x5eed_1234_abcd_ef01);
    runtime.block_on(async {
        // Before the handshake: random bytes, a wrong version, a good preamble
        // then garbage, then nothing at all.
        raw(&addr, rng.bytes(1000)).await;
        let mut wrong = MAGIC.to_vec();
        wrong.extend_from_slice(&(PROTOCOL_VERSION + 99).to_le_bytes());
        raw(&addr, wrong).await;
        let mut p = preamble();
        p.extend(rng.bytes(300));
        raw(&addr, p).await;
        raw(&addr, Vec::new()).await;
        // A good preamble, then a Hello frame cut short or hugely oversized.
        let mut p = preamble();
        p.extend(frame_lengths(&[1000]));
        p.extend(rng.bytes(10));
        raw(&addr, p).await;
        let mut p = preamble();
        p.extend(frame_lengths(&[u64::MAX]));
        raw(&addr, p).await;
        let mut p = preamble();
        p.extend(u32::MAX.to_le_bytes());
        raw(&addr, p).await;
    });
    check(1);

    runtime.block_on(async {
        let mut peers = tokio::task::JoinSet::new();
        for messages in nonsense_messages(&mut rng) {
            for role in [Role::Client, Role::Worker] {
                let (addr, messages) = (addr.clone(), messages.clone());
                peers.spawn(async move { after_handshake(&addr, role, messages).await });
            }
        }
        while peers.join_next().await.is_some() {}
    });
    check(2);
    runtime.block_on(invalid_graphs_are_refused_with_reasons(&addr));
    check(3);
    drop(client);
    cluster.shutdown();
}

/// A short seeded round of the wire fuzzer (`cargo xtask fuzz` runs longer):
/// no input makes a decoder panic.
#[test]
fn fuzzed_wire_input_never_panics_a_decoder() {
    let report = dask_distributed::fuzz::run(42, Duration::from_secs(20), 20_000, false);
    // The mutations reach past the framing into headers and task specs.
    let d = report.depth;
    assert!(d.messages > 0 && d.headers > 0 && d.tasks > 0, "{d:?}");
    let shown: Vec<String> = report
        .findings
        .iter()
        .take(3)
        .map(|(input, m)| format!("{m} on {input:?}"))
        .collect();
    assert!(report.findings.is_empty(), "findings: {shown:?}");
}
