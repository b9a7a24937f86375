//! A mutational fuzzer for what a peer can send: the frame decoder, every
//! message header type, and task specs (the decoding a worker does before
//! running anything). Stable Rust, no instrumentation: seeds are valid encodings,
//! mutations flip, insert, delete, splice and tweak length fields; any panic is a
//! finding. `cargo xtask fuzz --secs N` runs it for a budget; the test suite
//! runs a short, seeded round.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dask_core::Key;

use crate::messages::{PeerReply, PeerRequest, StoredTask, SubmittedTask, ToClient, ToScheduler};
use crate::protocol::{self, decode_task, Hello, Limits, Message, Role, WireArg, WireTask};

/// Limits used while fuzzing: small, so an announced length cannot make the
/// fuzzer allocate much.
const LIMITS: Limits = Limits {
    max_frame: 1 << 20,
    max_frames: 64,
};

/// What a fuzzing run did.
#[derive(Debug, Default)]
pub struct Report {
    /// Inputs tried.
    pub iterations: u64,
    /// Inputs whose processing panicked, with the panic message.
    pub findings: Vec<(Vec<u8>, String)>,
    /// How deep inputs got: framed messages read, headers decoded as some
    /// message type, task specs decoded into runnable tasks.
    pub depth: Depth,
}

/// Counts of inputs that reached each decoding stage (a fuzzer that only ever
/// fails at the first byte tests nothing).
#[derive(Debug, Default, Clone, Copy)]
pub struct Depth {
    /// Framed messages read.
    pub messages: u64,
    /// Headers that decoded as at least one message type.
    pub headers: u64,
    /// Task specs decoded into tasks.
    pub tasks: u64,
}

/// A tiny seeded generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Serializes `message` as it would go on the wire.
fn wire(message: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    let n = 1 + message.frames.len();
    out.extend_from_slice(&(n as u32).to_le_bytes());
    out.extend_from_slice(&(message.header.len() as u64).to_le_bytes());
    for f in &message.frames {
        out.extend_from_slice(&(f.len() as u64).to_le_bytes());
    }
    out.extend_from_slice(&message.header);
    for f in &message.frames {
        out.extend_from_slice(f);
    }
    out
}

fn encoded<T: serde::Serialize>(value: &T, frames: Vec<Bytes>) -> Vec<u8> {
    // Encoding our own well-formed values cannot fail.
    let header = postcard::to_allocvec(value).unwrap_or_default();
    wire(&Message::new(header, frames))
}

/// Valid encodings of each kind of message: the seeds mutations start from.
pub fn seeds() -> Vec<Vec<u8>> {
    let key = Key::new("x-1f", [0, 3]);
    let wire_task = WireTask {
        op: "dask_core::identity".into(),
        params: vec![1, 2, 3],
        args: vec![
            WireArg::Key(key.clone()),
            WireArg::Value {
                codec: "i64".into(),
                frame: 0,
            },
            WireArg::List(vec![WireArg::Task(Box::new(WireTask {
                op: "dask_core::identity".into(),
                params: vec![],
                args: vec![WireArg::Key(key.clone())],
            }))]),
        ],
    };
    let stored = StoredTask::Wire {
        task: wire_task,
        frames: vec![postcard::to_allocvec(&5i64).unwrap_or_default()],
    };
    vec![
        encoded(
            &Hello {
                crate_version: "0.1.0".into(),
                ..Hello::new(Role::Client)
            },
            vec![],
        ),
        encoded(
            &ToScheduler::UpdateGraph {
                tasks: vec![SubmittedTask::new(
                    key.clone(),
                    vec![Key::named("y")],
                    postcard::to_allocvec(&stored).unwrap_or_default(),
                    3,
                )],
                wanted: vec![key.clone()],
            },
            vec![],
        ),
        encoded(
            &ToScheduler::TaskFinished {
                key: key.clone(),
                run_id: 1,
                nbytes: 8,
                timing: crate::task_stream::TaskTiming {
                    start: 1.0,
                    stop: 2.0,
                    thread: 0,
                },
                value: None,
            },
            vec![],
        ),
        encoded(
            &ToClient::WhoHas {
                id: 1,
                who_has: vec![(key.clone(), vec!["127.0.0.1:1".into()])],
            },
            vec![],
        ),
        encoded(
            &PeerRequest::GetData {
                keys: vec![key.clone()],
            },
            vec![],
        ),
        encoded(
            &PeerReply::Data {
                values: vec![(key, "i64".into())],
            },
            vec![Bytes::from_static(&[10])],
        ),
        encoded(&stored, vec![Bytes::from_static(&[10])]),
    ]
}

/// Decodes everything a peer's bytes could be: messages, then each header as
/// every message type, and task specs; errors are fine, panics are findings.
pub fn process(data: &[u8]) -> Depth {
    let mut depth = Depth::default();
    let runtime = tokio::runtime::Builder::new_current_thread().build();
    let Ok(runtime) = runtime else { return depth };
    let mut reader = data;
    let mut messages = Vec::new();
    runtime.block_on(async {
        while let Ok(m) = protocol::read_message(&mut reader, &LIMITS).await {
            messages.push(m);
        }
    });
    depth.messages = messages.len() as u64;
    // The raw bytes as a header, too: the fuzzer need not find the framing.
    messages.push(Message::new(Bytes::copy_from_slice(data), vec![]));
    for m in &messages {
        let decoded = [
            protocol::decode::<Hello>("hello", &m.header).is_ok(),
            protocol::decode::<ToClient>("to client", &m.header).is_ok(),
            protocol::decode::<PeerRequest>("peer request", &m.header).is_ok(),
            protocol::decode::<PeerReply>("peer reply", &m.header).is_ok(),
        ];
        let to_scheduler = protocol::decode::<ToScheduler>("to scheduler", &m.header);
        if to_scheduler.is_ok() || decoded.contains(&true) {
            depth.headers += 1;
        }
        if let Ok(ToScheduler::UpdateGraph { tasks, .. }) = to_scheduler {
            for t in tasks {
                depth.tasks += run_spec(&t.run_spec, &m.frames);
            }
        }
        depth.tasks += run_spec(&m.header, &m.frames);
    }
    depth
}

/// Decodes a stored task spec and its task; returns how many tasks decoded.
fn run_spec(bytes: &[u8], frames: &[Bytes]) -> u64 {
    let Ok(StoredTask::Wire { task, frames: own }) =
        protocol::decode::<StoredTask>("stored task", bytes)
    else {
        return 0;
    };
    let own: Vec<Bytes> = own.into_iter().map(Bytes::from).collect();
    u64::from(decode_task(&task, &own).is_ok()) + u64::from(decode_task(&task, frames).is_ok())
}

fn mutate(rng: &mut Rng, input: &[u8], seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(7) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(out.len() + 1);
                out.insert(i, rng.next() as u8);
            }
            2 if !out.is_empty() => {
                let i = rng.below(out.len());
                let n = rng.below(out.len() - i + 1);
                out.drain(i..i + n);
            }
            3 => {
                let other = &seeds[rng.below(seeds.len())];
                let cut = rng.below(out.len() + 1);
                let from = rng.below(other.len() + 1);
                out.truncate(cut);
                out.extend_from_slice(&other[from..]);
            }
            4 if out.len() >= 12 => {
                // A frame length or count at an interesting value.
                let at = rng.below(out.len() - 7);
                let v: u64 = [
                    0,
                    1,
                    0xff,
                    1 << 20,
                    (1 << 20) + 1,
                    u32::MAX as u64,
                    u64::MAX,
                ][rng.below(7)];
                out[at..at + 8].copy_from_slice(&v.to_le_bytes());
            }
            5 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = [0, 0x7f, 0x80, 0xff][rng.below(4)];
            }
            _ => {
                let n = rng.below(out.len() + 1);
                out.truncate(n);
            }
        }
    }
    out
}

/// Fuzzes for `budget` or `max_iterations`, whichever ends first, from `seed`.
/// With `quiet`, the process's panic hook is silenced meanwhile (a standalone
/// run; tests keep theirs).
pub fn run(seed: u64, budget: Duration, max_iterations: u64, quiet: bool) -> Report {
    let seeds = seeds();
    let mut rng = Rng(seed | 1);
    let mut report = Report::default();
    let started = Instant::now();
    let hook = quiet.then(|| {
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        hook
    });
    while report.iterations < max_iterations && started.elapsed() < budget {
        let base = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, base, &seeds);
        report.iterations += 1;
        match catch_unwind(AssertUnwindSafe(|| process(&input))) {
            Ok(d) => {
                report.depth.messages += d.messages;
                report.depth.headers += d.headers;
                report.depth.tasks += d.tasks;
            }
            Err(payload) => {
                let message = dask_core::Panicked::from_payload(payload).message;
                report.findings.push((input, message));
            }
        }
    }
    if let Some(hook) = hook {
        std::panic::set_hook(hook);
    }
    report
}
