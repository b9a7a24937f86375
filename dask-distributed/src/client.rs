//! The [`Client`]: submits graphs to a scheduler and gathers results from
//! workers. Implements [`dask_core::Scheduler`], so any collection's
//! `compute_with(&client)` runs on the cluster.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use dask_core::{Graph, Key, Plan, Scheduler, Value};
use tokio::runtime::Runtime;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;

use crate::messages::{self, StoredTask, SubmittedTask, ToClient, ToScheduler};
use crate::protocol::{self, encode_task, Limits, Message, Role};
use crate::scheduler::state::{Outcome, TaskError};
use crate::{Error, Result};

type WhoHas = Vec<(Key, Vec<String>)>;

#[derive(Default)]
struct Pending {
    reports: HashMap<Key, Vec<oneshot::Sender<Outcome>>>,
    who_has: VecDeque<oneshot::Sender<WhoHas>>,
    closed: bool,
}

/// A connection to a scheduler.
///
/// Blocking methods run on the client's own small tokio runtime, so they work
/// from plain threads. If the scheduler goes away, every pending wait fails
/// with an error instead of hanging.
pub struct Client {
    /// The cluster this client started (`Client::new`), stopped with the client.
    cluster: Option<crate::LocalCluster>,
    runtime: Arc<Runtime>,
    tx: UnboundedSender<Message>,
    pending: Arc<Mutex<Pending>>,
    addr: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Client(scheduler={})", self.addr)
    }
}

impl Client {
    /// Connects to the scheduler at `addr` (`host:port`).
    pub fn connect(addr: &str) -> Result<Client> {
        refuse_inside_runtime()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("dask-client")
            .enable_all()
            .build()?;
        let pending: Arc<Mutex<Pending>> = Arc::default();
        let reader_pending = pending.clone();
        let addr_owned = addr.to_owned();
        let tx = runtime.block_on(async move {
            let conn = protocol::connect(&addr_owned, Role::Client, Limits::default()).await?;
            let (mut reader, writer) = conn.split();
            let tx = writer.spawn();
            tokio::spawn(async move {
                while let Ok(m) = reader.recv().await {
                    let Ok(msg) = messages::header::<ToClient>("client", &m) else {
                        break;
                    };
                    let mut p = reader_pending
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    match msg {
                        ToClient::Report { key, outcome } => {
                            for waiter in p.reports.remove(&key).unwrap_or_default() {
                                let _ = waiter.send(outcome.clone());
                            }
                        }
                        ToClient::WhoHas { who_has } => {
                            if let Some(w) = p.who_has.pop_front() {
                                let _ = w.send(who_has);
                            }
                        }
                    }
                }
                // Connection gone: wake every waiter with an error (senders dropped).
                let mut p = reader_pending
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                p.closed = true;
                p.reports.clear();
                p.who_has.clear();
            });
            Ok::<_, Error>(tx)
        })?;
        Ok(Client {
            cluster: None,
            runtime: Arc::new(runtime),
            tx,
            pending,
            addr: addr.to_owned(),
        })
    }

    /// Starts a [`LocalCluster`](crate::LocalCluster) with default settings (one
    /// worker, a thread per core) and connects to it, like Dask's `Client()`.
    /// The cluster stops with the client.
    pub fn new() -> Result<Client> {
        Client::with_cluster(crate::LocalCluster::builder().start()?)
    }

    /// Connects to `cluster` and owns it: it stops when the client is dropped.
    pub fn with_cluster(cluster: crate::LocalCluster) -> Result<Client> {
        let mut client = Client::connect(&cluster.scheduler_addr())?;
        client.cluster = Some(cluster);
        Ok(client)
    }

    /// The cluster this client owns, if it started one.
    pub fn cluster(&self) -> Option<&crate::LocalCluster> {
        self.cluster.as_ref()
    }

    /// The scheduler's address.
    pub fn scheduler_addr(&self) -> &str {
        &self.addr
    }

    fn send(&self, what: &'static str, msg: &ToScheduler) -> Result<()> {
        self.tx
            .send(messages::message(what, msg)?)
            .map_err(|_| Error::Closed)
    }

    /// Computes `outputs` of `graph` on the cluster.
    pub fn compute_graph(&self, graph: &Graph, outputs: &[Key]) -> Result<Vec<Value>> {
        refuse_inside_runtime()?;
        let plan = Plan::new(graph, outputs)?;
        // Encode everything first: an unregistered op or a value without a codec
        // is refused before anything is submitted.
        let mut tasks = Vec::with_capacity(plan.len());
        for i in 0..plan.len() {
            let key = plan.key(i);
            let (task, frames) = encode_task(key, plan.task(i))?;
            let stored = StoredTask {
                task,
                frames: frames.into_iter().map(|b| b.to_vec()).collect(),
            };
            tasks.push(SubmittedTask {
                key: key.clone(),
                dependencies: plan
                    .dependencies(i)
                    .iter()
                    .map(|&d| plan.key(d as usize).clone())
                    .collect(),
                run_spec: protocol::encode("task", &stored)?.to_vec(),
                order: i as u64,
            });
        }
        let mut wanted: Vec<Key> = outputs.to_vec();
        wanted.sort();
        wanted.dedup();
        let receivers = {
            let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            if p.closed {
                return Err(Error::Closed);
            }
            wanted
                .iter()
                .map(|k| {
                    let (tx, rx) = oneshot::channel();
                    p.reports.entry(k.clone()).or_default().push(tx);
                    (k.clone(), rx)
                })
                .collect::<Vec<_>>()
        };
        self.send(
            "update-graph",
            &ToScheduler::UpdateGraph {
                tasks,
                wanted: wanted.clone(),
            },
        )?;
        let result = self.runtime.block_on(async {
            let mut failure: Option<TaskError> = None;
            for (_, rx) in receivers {
                match rx.await.map_err(|_| Error::Closed)? {
                    Outcome::Memory => {}
                    Outcome::Erred(e) => {
                        failure.get_or_insert(e);
                    }
                }
            }
            if let Some(e) = failure {
                return Err(Error::Core(remote_failure(e)));
            }
            let who_has = self.who_has(&wanted).await?;
            gather(&who_has).await
        });
        let _ = self.send("release", &ToScheduler::ReleaseKeys { keys: wanted });
        let values = result?;
        outputs
            .iter()
            .map(|k| {
                values.get(k).cloned().ok_or_else(|| Error::Malformed {
                    what: "gather",
                    detail: format!("no value for {k}"),
                })
            })
            .collect()
    }

    async fn who_has(&self, keys: &[Key]) -> Result<WhoHas> {
        let (tx, rx) = oneshot::channel();
        {
            let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            if p.closed {
                return Err(Error::Closed);
            }
            p.who_has.push_back(tx);
        }
        self.send(
            "who-has",
            &ToScheduler::WhoHas {
                keys: keys.to_vec(),
            },
        )?;
        rx.await.map_err(|_| Error::Closed)
    }
}

/// The blocking client cannot wait inside an async runtime (tokio would panic).
fn refuse_inside_runtime() -> Result<()> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::InsideRuntime);
    }
    Ok(())
}

/// Fetches every key from a worker holding it, one request per worker.
async fn gather(who_has: &WhoHas) -> Result<HashMap<Key, Value>> {
    let mut by_worker: BTreeMap<&str, Vec<Key>> = BTreeMap::new();
    for (key, addrs) in who_has {
        let addr = addrs.first().ok_or_else(|| Error::Malformed {
            what: "who-has",
            detail: format!("no worker holds {key}"),
        })?;
        by_worker.entry(addr).or_default().push(key.clone());
    }
    let mut values = HashMap::new();
    for (addr, keys) in by_worker {
        let fetched = crate::worker::fetch(addr, &keys, Role::Client).await?;
        values.extend(keys.into_iter().zip(fetched));
    }
    Ok(values)
}

/// A task error from the cluster as the same typed error local schedulers give.
fn remote_failure(e: TaskError) -> dask_core::Error {
    dask_core::Error::TaskFailed {
        key: e.key,
        op: e.op,
        message: e.message.clone(),
        source: e.message.into(),
    }
}

impl Scheduler for Client {
    fn name(&self) -> &str {
        "distributed"
    }

    fn compute(&self, graph: &Graph, outputs: &[Key]) -> dask_core::Result<Vec<Value>> {
        self.compute_graph(graph, outputs).map_err(|e| match e {
            Error::Core(core) => core,
            other => dask_core::Error::Scheduler {
                scheduler: "distributed".into(),
                message: other.to_string(),
            },
        })
    }
}
