//! A worker: runs the tasks the scheduler sends, holds their results, and serves
//! them to peers and clients on its data port.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use dask_core::{codec, Key, Value};
use tokio::net::TcpListener;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};

use crate::messages::{self, PeerReply, PeerRequest, StoredTask, ToScheduler, ToWorker};
use crate::protocol::{self, decode_task, Connection, Limits, Message, Role};
use crate::{Error, Result};

use crate::local::{self, Memory};

/// How long a worker keeps trying to fetch a dependency whose holder is gone,
/// waiting for the scheduler to reschedule, before reporting a failure.
const FETCH_PATIENCE: Duration = Duration::from_secs(5);

/// A running worker.
pub struct WorkerHandle {
    data_addr: String,
    main: JoinHandle<()>,
    data: JoinHandle<()>,
}

impl WorkerHandle {
    /// Where peers and clients fetch data from this worker.
    pub fn data_addr(&self) -> &str {
        &self.data_addr
    }

    /// Stops the worker at once, as a crash would: running tasks are abandoned,
    /// held data is lost, connections close.
    pub fn kill(&self) {
        local::unregister_worker(&self.data_addr);
        self.main.abort();
        self.data.abort();
    }

    /// Whether the worker has stopped (killed, or its scheduler went away).
    pub fn is_finished(&self) -> bool {
        self.main.is_finished()
    }

    /// Waits until the worker stops (its scheduler connection ended).
    pub async fn finished(self) {
        let WorkerHandle {
            main,
            data,
            data_addr,
        } = self;
        let _ = main.await;
        local::unregister_worker(&data_addr);
        data.abort();
    }
}

/// Starts a worker with `nthreads` task threads, connected to the scheduler at
/// `scheduler_addr`; its data port listens on 127.0.0.1 with an OS-chosen port.
pub async fn start(scheduler_addr: &str, nthreads: u32) -> Result<WorkerHandle> {
    let memory: Memory = Arc::default();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let data_addr = listener.local_addr()?.to_string();
    local::register_worker(&data_addr, memory.clone());
    let data = tokio::spawn(serve_data(listener, memory.clone()));
    let conn = protocol::connect(scheduler_addr, Role::Worker, Limits::default()).await?;
    let (mut reader, writer) = conn.split();
    let tx = writer.spawn();
    let register = ToScheduler::RegisterWorker {
        nthreads,
        data_addr: data_addr.clone(),
    };
    tx.send(messages::message("register", &register)?)
        .map_err(|_| Error::Closed)?;
    let slots = Arc::new(Semaphore::new(nthreads.max(1) as usize));
    let peers = Arc::new(PeerPool::new(Role::Worker));
    let scheduler: Arc<str> = Arc::from(scheduler_addr); // for tasks' coordination primitives
    let main = tokio::spawn(async move {
        // Dropping the set (kill) aborts every running task.
        let mut running = JoinSet::new();
        let mut running_keys: HashMap<Key, tokio::task::AbortHandle> = HashMap::new();
        while let Ok(m) = reader.recv().await {
            while let Some(Ok(done)) = running.try_join_next() {
                running_keys.remove(&done);
            }
            match messages::header::<ToWorker>("worker", &m) {
                Ok(ToWorker::Compute {
                    key,
                    run_spec,
                    who_has,
                }) => {
                    if running_keys.contains_key(&key) {
                        continue; // already running it
                    }
                    let resources = Resources {
                        memory: memory.clone(),
                        slots: slots.clone(),
                        peers: peers.clone(),
                        scheduler: scheduler.clone(),
                    };
                    let task = run_task(key.clone(), run_spec, who_has, resources, tx.clone());
                    running_keys.insert(key, running.spawn(task));
                }
                Ok(ToWorker::Free { keys }) => {
                    let mut mem = memory.lock().unwrap_or_else(PoisonError::into_inner);
                    for k in keys {
                        mem.remove(&k);
                        // A task the scheduler no longer wants here: stop it, so it
                        // neither stores nor reports a result.
                        if let Some(handle) = running_keys.remove(&k) {
                            handle.abort();
                        }
                    }
                }
                Err(_) => break,
            }
        }
    });
    Ok(WorkerHandle {
        data_addr,
        main,
        data,
    })
}

/// What a worker's tasks share.
struct Resources {
    memory: Memory,
    slots: Arc<Semaphore>,
    peers: Arc<PeerPool>,
    scheduler: Arc<str>,
}

async fn run_task(
    key: Key,
    run_spec: Vec<u8>,
    who_has: Vec<(Key, Vec<String>)>,
    resources: Resources,
    tx: UnboundedSender<Message>,
) -> Key {
    let Resources {
        memory,
        slots,
        peers,
        scheduler,
    } = resources;
    let (result, in_process) = match decode(&key, &run_spec) {
        Ok((task, in_process)) => (
            execute(&key, task, who_has, &memory, &slots, &peers, scheduler).await,
            in_process,
        ),
        Err(e) => (Err(e), false),
    };
    let reply = match result {
        Ok(value) => {
            memory
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(key.clone(), value);
            ToScheduler::TaskFinished {
                key: key.clone(),
                nbytes: 8,
            }
        }
        Err(Error::Core(error @ dask_core::Error::TaskFailed { .. })) => {
            let dask_core::Error::TaskFailed {
                key: failed,
                op,
                message,
                ..
            } = &error
            else {
                unreachable!("matched above")
            };
            let reply = ToScheduler::TaskErred {
                key: failed.clone(),
                op: op.clone(),
                message: message.clone(),
            };
            if in_process {
                local::put_error(failed.clone(), error);
            }
            reply
        }
        Err(other) => ToScheduler::TaskErred {
            key: key.clone(),
            op: "worker".into(),
            message: other.to_string(),
        },
    };
    if let Ok(m) = messages::message("task-done", &reply) {
        let _ = tx.send(m);
    }
    key
}

/// The task to run, and whether it came through the in-process table.
fn decode(key: &Key, run_spec: &[u8]) -> Result<(Arc<dask_core::Task>, bool)> {
    match protocol::decode::<StoredTask>("task", run_spec)? {
        StoredTask::Wire { task, frames } => {
            let frames: Vec<Bytes> = frames.into_iter().map(Bytes::from).collect();
            Ok((Arc::new(decode_task(&task, &frames)?), false))
        }
        StoredTask::Local { pid, token } => {
            let task = (pid == std::process::id())
                .then(|| local::get_task(token))
                .flatten();
            let task = task.ok_or_else(|| Error::Malformed {
                what: "task",
                detail: format!(
                    "{key} was submitted as an in-process task of process {pid}, \
                     which this worker (process {}) cannot run",
                    std::process::id()
                ),
            })?;
            Ok((task, true))
        }
    }
}

async fn execute(
    key: &Key,
    task: Arc<dask_core::Task>,
    who_has: Vec<(Key, Vec<String>)>,
    memory: &Memory,
    slots: &Arc<Semaphore>,
    peers: &PeerPool,
    scheduler: Arc<str>,
) -> Result<Value> {
    let mut inputs: HashMap<Key, Value> = HashMap::new();
    for (dep, addrs) in who_has {
        let local = memory
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&dep)
            .cloned();
        let value = match local {
            Some(v) => v,
            None => fetch_patiently(peers, &dep, &addrs).await?,
        };
        inputs.insert(dep, value);
    }
    let _permit = slots.acquire().await.map_err(|_| Error::Closed)?;
    let key = key.clone();
    let result = tokio::task::spawn_blocking(move || {
        crate::coordination::in_task(&scheduler, || task.execute(&key, |k| inputs[k].clone()))
    })
    .await
    .map_err(|e| Error::Malformed {
        what: "task",
        detail: format!("task thread failed: {e}"),
    })?;
    Ok(result?)
}

async fn fetch_patiently(peers: &PeerPool, key: &Key, addrs: &[String]) -> Result<Value> {
    let deadline = tokio::time::Instant::now() + FETCH_PATIENCE;
    loop {
        if let Some(v) = addrs.iter().find_map(|a| local::read(a, key)) {
            return Ok(v);
        }
        for addr in addrs {
            if let Ok(mut values) = peers.fetch(addr, std::slice::from_ref(key)).await {
                if let Some(v) = values.pop() {
                    return Ok(v);
                }
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Malformed {
                what: "fetch",
                detail: format!("could not fetch dependency {key} from any of {addrs:?}"),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Idle connections to data ports, reused across fetches (a connection and
/// its handshake per dependency would dominate small tasks). One pool per
/// runtime: a worker's, a client's.
pub struct PeerPool {
    role: Role,
    idle: Mutex<HashMap<String, Vec<Connection>>>,
}

/// Idle connections kept per peer.
const MAX_IDLE_PER_PEER: usize = 4;

impl PeerPool {
    /// An empty pool whose connections handshake as `role`.
    pub fn new(role: Role) -> PeerPool {
        PeerPool {
            role,
            idle: Mutex::new(HashMap::new()),
        }
    }

    /// Fetches `keys` from the data port at `addr`, reusing an idle connection
    /// when there is one (and a fresh one if that turns out to be dead).
    pub async fn fetch(&self, addr: &str, keys: &[Key]) -> Result<Vec<Value>> {
        let request = PeerRequest::GetData {
            keys: keys.to_vec(),
        };
        let reply = self
            .exchange(addr, messages::message("get-data", &request)?)
            .await?;
        decode_reply(addr, keys, &reply)
    }

    /// Stores encoded values (key, codec tag, bytes) on the worker whose data
    /// port is `addr` (scatter).
    pub async fn put(&self, addr: &str, values: Vec<(Key, String, Bytes)>) -> Result<()> {
        let (header, frames): (Vec<(Key, String)>, Vec<Bytes>) =
            values.into_iter().map(|(k, t, b)| ((k, t), b)).unzip();
        let request = PeerRequest::PutData { values: header };
        let reply = self
            .exchange(addr, messages::message_with("put-data", &request, frames)?)
            .await?;
        match messages::header::<PeerReply>("data", &reply)? {
            PeerReply::Stored => Ok(()),
            PeerReply::Failed { message } => Err(Error::Malformed {
                what: "put-data",
                detail: format!("the worker at {addr} could not store the values: {message}"),
            }),
            other => Err(Error::Malformed {
                what: "put-data",
                detail: format!("unexpected reply {other:?}"),
            }),
        }
    }

    /// Sends one request and reads its reply, on a pooled connection when one
    /// is idle (a stale one is replaced by a fresh connection).
    async fn exchange(&self, addr: &str, request: Message) -> Result<Message> {
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(addr)
            .and_then(Vec::pop);
        if let Some(conn) = pooled {
            match self.request(conn, addr, &request).await {
                Err(Error::Io(_) | Error::Closed | Error::Truncated { .. }) => {} // stale: reconnect
                other => return other,
            }
        }
        let conn = protocol::connect(addr, self.role, Limits::default()).await?;
        self.request(conn, addr, &request).await
    }

    async fn request(
        &self,
        mut conn: Connection,
        addr: &str,
        request: &Message,
    ) -> Result<Message> {
        conn.send(request).await?;
        let reply = conn.recv().await?;
        {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            let conns = idle.entry(addr.to_owned()).or_default();
            if conns.len() < MAX_IDLE_PER_PEER {
                conns.push(conn);
            }
        }
        Ok(reply)
    }
}

fn decode_reply(addr: &str, keys: &[Key], reply: &Message) -> Result<Vec<Value>> {
    match messages::header::<PeerReply>("data", reply)? {
        PeerReply::Data { values } => {
            if values.len() != reply.frames.len() || values.len() != keys.len() {
                return Err(Error::Malformed {
                    what: "data",
                    detail: format!(
                        "{} values for {} frames and {} keys",
                        values.len(),
                        reply.frames.len(),
                        keys.len()
                    ),
                });
            }
            values
                .iter()
                .zip(&reply.frames)
                .map(|((_, tag), frame)| Ok(codec::decode_value(tag, frame)?))
                .collect()
        }
        PeerReply::Missing { keys } => Err(Error::Malformed {
            what: "data",
            detail: format!("the worker at {addr} does not hold {keys:?}"),
        }),
        PeerReply::Failed { message } => Err(Error::Malformed {
            what: "data",
            detail: message,
        }),
        PeerReply::Stored => Err(Error::Malformed {
            what: "data",
            detail: format!("the worker at {addr} answered a fetch with `Stored`"),
        }),
    }
}

async fn serve_data(listener: TcpListener, memory: Memory) {
    // Connections live in a set owned by this task: stopping the worker
    // (aborting this task) closes them too, as a crash would.
    let mut connections = JoinSet::new();
    while let Ok((stream, _)) = listener.accept().await {
        while connections.try_join_next().is_some() {}
        let memory = memory.clone();
        connections.spawn(async move {
            let Ok(mut conn) = protocol::accept(stream, Role::Worker, Limits::default()).await
            else {
                return;
            };
            while let Ok(m) = conn.recv().await {
                let reply = match messages::header("peer-request", &m) {
                    Ok(PeerRequest::GetData { keys }) => data_reply(&keys, &memory),
                    Ok(PeerRequest::PutData { values }) => put_reply(&values, &m.frames, &memory),
                    Err(_) => return,
                };
                if conn.send(&reply).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Decodes and stores scattered values: all or none.
fn put_reply(values: &[(Key, String)], frames: &[Bytes], memory: &Memory) -> Message {
    let decoded: std::result::Result<Vec<Value>, String> = if values.len() != frames.len() {
        Err(format!(
            "{} values for {} frames",
            values.len(),
            frames.len()
        ))
    } else {
        values
            .iter()
            .zip(frames)
            .map(|((_, tag), b)| codec::decode_value(tag, b).map_err(|e| e.to_string()))
            .collect()
    };
    let reply = match decoded {
        Ok(decoded) => {
            let mut mem = memory.lock().unwrap_or_else(PoisonError::into_inner);
            for ((k, _), v) in values.iter().zip(decoded) {
                mem.insert(k.clone(), v);
            }
            PeerReply::Stored
        }
        Err(message) => PeerReply::Failed { message },
    };
    messages::message("data", &reply).unwrap_or_default()
}

fn data_reply(keys: &[Key], memory: &Memory) -> Message {
    let held: Vec<Option<Value>> = {
        let mem = memory.lock().unwrap_or_else(PoisonError::into_inner);
        keys.iter().map(|k| mem.get(k).cloned()).collect()
    };
    let missing: Vec<Key> = keys
        .iter()
        .zip(&held)
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| k.clone())
        .collect();
    let reply = if !missing.is_empty() {
        messages::message("data", &PeerReply::Missing { keys: missing })
    } else {
        let encoded: std::result::Result<Vec<(&'static str, Vec<u8>)>, dask_core::Error> =
            held.iter().flatten().map(codec::encode_value).collect();
        match encoded {
            Ok(encoded) => {
                let values = keys
                    .iter()
                    .zip(&encoded)
                    .map(|(k, (tag, _))| (k.clone(), (*tag).to_owned()))
                    .collect();
                let frames = encoded.into_iter().map(|(_, b)| Bytes::from(b)).collect();
                messages::message_with("data", &PeerReply::Data { values }, frames)
            }
            Err(e) => messages::message(
                "data",
                &PeerReply::Failed {
                    message: e.to_string(),
                },
            ),
        }
    };
    reply.unwrap_or_default()
}
