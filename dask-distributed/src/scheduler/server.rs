//! The scheduler process: accepts workers and clients over TCP and drives the
//! [`SchedulerState`] with their messages.
//!
//! One task (the *core*) owns the state; every connection has a reading task
//! that turns messages into core events and a writing task fed by a channel.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::task::JoinHandle;

use super::state::{
    Action, ClientId, Event, Priority, SchedulerState, TaskError, TaskSpec, WorkerId,
};
use crate::messages::{self, ToClient, ToScheduler, ToWorker};
use crate::protocol::{self, Limits, Message, Role};
use crate::{Error, Result};

/// A running scheduler; dropping the handle does not stop it, [`SchedulerHandle::shutdown`] does.
pub struct SchedulerHandle {
    addr: SocketAddr,
    accept: JoinHandle<()>,
    core: JoinHandle<()>,
}

impl SchedulerHandle {
    /// The address workers and clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and stops the core (connections close).
    pub fn shutdown(&self) {
        self.accept.abort();
        self.core.abort();
    }
}

enum CoreEvent {
    WorkerJoined {
        id: WorkerId,
        nthreads: u32,
        data_addr: String,
        tx: UnboundedSender<Message>,
    },
    ClientJoined {
        id: ClientId,
        tx: UnboundedSender<Message>,
    },
    FromWorker(WorkerId, ToScheduler),
    FromClient(ClientId, ToScheduler),
    WorkerLeft(WorkerId),
    ClientLeft(ClientId),
}

/// How long a worker may stay silent (no heartbeat) before the scheduler
/// removes it, by default (Dask's `distributed.scheduler.worker-ttl`).
pub const DEFAULT_WORKER_TTL: Duration = Duration::from_secs(300);

/// A scheduler's settings.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// A worker silent for longer than this is removed and its data recomputed.
    pub worker_ttl: Duration,
    /// Whether idle workers steal tasks not yet started from busy ones.
    pub work_stealing: bool,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        SchedulerOptions {
            worker_ttl: DEFAULT_WORKER_TTL,
            work_stealing: true,
        }
    }
}

/// Starts a scheduler listening on `addr` (use port 0 to let the OS pick).
pub async fn start(addr: &str) -> Result<SchedulerHandle> {
    start_with(addr, SchedulerOptions::default()).await
}

/// Starts a scheduler with `options`, listening on `addr`.
pub async fn start_with(addr: &str, options: SchedulerOptions) -> Result<SchedulerHandle> {
    if options.worker_ttl.is_zero() {
        return Err(Error::InvalidConfig {
            message: "worker_ttl must be positive (Dask's default is 5 minutes)".into(),
        });
    }
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Connect {
            addr: addr.to_owned(),
            source,
        })?;
    let addr = listener.local_addr()?;
    let (tx, rx) = unbounded_channel();
    let core = tokio::spawn(core(rx, options));
    let ids = Arc::new(AtomicU64::new(1));
    let accept = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve_connection(stream, tx.clone(), ids.clone()));
        }
    });
    Ok(SchedulerHandle { addr, accept, core })
}

async fn serve_connection(
    stream: TcpStream,
    core: UnboundedSender<CoreEvent>,
    ids: Arc<AtomicU64>,
) {
    let Ok(conn) = protocol::accept(stream, Role::Scheduler, Limits::default()).await else {
        return; // foreign peer or failed handshake: refused before any message
    };
    let role = conn.peer().role;
    let (mut reader, writer) = conn.split();
    let tx = writer.spawn();
    let id = ids.fetch_add(1, Ordering::Relaxed);
    match role {
        Role::Worker => {
            let Ok(first) = reader.recv().await else {
                return;
            };
            let Ok(ToScheduler::RegisterWorker {
                nthreads,
                data_addr,
            }) = messages::header("register", &first)
            else {
                return;
            };
            let _ = core.send(CoreEvent::WorkerJoined {
                id,
                nthreads,
                data_addr,
                tx,
            });
            while let Ok(m) = reader.recv().await {
                match messages::header::<ToScheduler>("worker", &m) {
                    Ok(msg) => {
                        let _ = core.send(CoreEvent::FromWorker(id, msg));
                    }
                    Err(_) => break, // a malformed message ends the connection
                }
            }
            let _ = core.send(CoreEvent::WorkerLeft(id));
        }
        Role::Client => {
            let _ = core.send(CoreEvent::ClientJoined { id, tx });
            while let Ok(m) = reader.recv().await {
                match messages::header::<ToScheduler>("client", &m) {
                    Ok(msg) => {
                        let _ = core.send(CoreEvent::FromClient(id, msg));
                    }
                    Err(_) => break,
                }
            }
            let _ = core.send(CoreEvent::ClientLeft(id));
        }
        Role::Scheduler => {}
    }
}

struct Peer {
    tx: UnboundedSender<Message>,
    data_addr: String,
    last_seen: tokio::time::Instant,
}

async fn core(mut rx: UnboundedReceiver<CoreEvent>, options: SchedulerOptions) {
    let mut state = SchedulerState::new().with_work_stealing(options.work_stealing);
    let mut workers: HashMap<WorkerId, Peer> = HashMap::new();
    let mut clients: HashMap<ClientId, UnboundedSender<Message>> = HashMap::new();
    let mut ttl_check =
        tokio::time::interval((options.worker_ttl / 4).max(Duration::from_millis(10)));
    ttl_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let event = tokio::select! {
            event = rx.recv() => match event {
                Some(event) => event,
                None => break,
            },
            _ = ttl_check.tick() => {
                let now = tokio::time::Instant::now();
                let silent: Vec<WorkerId> = workers
                    .iter()
                    .filter(|(_, p)| now.duration_since(p.last_seen) > options.worker_ttl)
                    .map(|(id, _)| *id)
                    .collect();
                for id in silent {
                    if let Some(peer) = workers.remove(&id) {
                        eprintln!(
                            "dask-rs scheduler: worker {} sent no heartbeat for {:?}; removing it",
                            peer.data_addr, options.worker_ttl
                        );
                    }
                    // Dropping its sender closes the connection; its data is recomputed.
                    apply(&mut state, Event::RemoveWorker { worker: id }, &workers, &clients);
                }
                continue;
            }
        };
        let stimulus = match event {
            CoreEvent::WorkerJoined {
                id,
                nthreads,
                data_addr,
                tx,
            } => {
                workers.insert(
                    id,
                    Peer {
                        tx,
                        data_addr,
                        last_seen: tokio::time::Instant::now(),
                    },
                );
                Event::AddWorker {
                    worker: id,
                    nthreads,
                }
            }
            CoreEvent::WorkerLeft(id) => {
                workers.remove(&id);
                Event::RemoveWorker { worker: id }
            }
            CoreEvent::ClientJoined { id, tx } => {
                clients.insert(id, tx);
                continue;
            }
            CoreEvent::ClientLeft(id) => {
                clients.remove(&id);
                Event::RemoveClient { client: id }
            }
            CoreEvent::FromWorker(worker, msg) => match msg {
                ToScheduler::TaskFinished { key, nbytes } => Event::TaskFinished {
                    worker,
                    key,
                    nbytes,
                },
                ToScheduler::TaskErred { key, op, message } => Event::TaskErred {
                    worker,
                    key: key.clone(),
                    error: TaskError { key, op, message },
                },
                ToScheduler::MissingData {
                    key,
                    dependency,
                    errant,
                } => Event::MissingData {
                    worker,
                    key,
                    dependency,
                    errant: workers
                        .iter()
                        .filter(|(_, p)| errant.contains(&p.data_addr))
                        .map(|(id, _)| *id)
                        .collect(),
                },
                ToScheduler::StealResponse { key, stolen } => Event::StealResponse {
                    worker,
                    key,
                    stolen,
                },
                ToScheduler::Heartbeat { metrics } => {
                    let Some(p) = workers.get_mut(&worker) else {
                        continue; // already removed
                    };
                    p.last_seen = tokio::time::Instant::now();
                    let paused = metrics.status == crate::metrics::WorkerStatus::Paused;
                    let was = state.workers().get(&worker).map(|w| w.paused);
                    if was == Some(paused) {
                        continue; // nothing changed for placement
                    }
                    Event::Heartbeat { worker, paused }
                }
                _ => continue,
            },
            CoreEvent::FromClient(client, msg) => match msg {
                ToScheduler::UpdateGraph { tasks, wanted } => Event::UpdateGraph {
                    client,
                    tasks: tasks
                        .into_iter()
                        .map(|t| TaskSpec {
                            key: t.key,
                            dependencies: t.dependencies,
                            run_spec: t.run_spec.into(),
                            priority: Priority {
                                order: t.order,
                                ..Default::default()
                            },
                            retries: 0,
                            restrictions: None,
                        })
                        .collect(),
                    wanted,
                },
                ToScheduler::ReleaseKeys { keys } => Event::ReleaseKeys { client, keys },
                ToScheduler::WhoHas { id, keys } => {
                    let who_has = keys
                        .into_iter()
                        .map(|k| {
                            let addrs = state
                                .task(&k)
                                .map(|t| {
                                    t.who_has
                                        .iter()
                                        .filter_map(|w| workers.get(w))
                                        .map(|p| p.data_addr.clone())
                                        .collect()
                                })
                                .unwrap_or_default();
                            (k, addrs)
                        })
                        .collect();
                    if let (Some(tx), Ok(m)) = (
                        clients.get(&client),
                        messages::message("who-has", &ToClient::WhoHas { id, who_has }),
                    ) {
                        let _ = tx.send(m);
                    }
                    continue;
                }
                _ => continue,
            },
        };
        apply(&mut state, stimulus, &workers, &clients);
    }
}

fn apply(
    state: &mut SchedulerState,
    stimulus: Event,
    workers: &HashMap<WorkerId, Peer>,
    clients: &HashMap<ClientId, UnboundedSender<Message>>,
) {
    match state.handle(stimulus) {
        Ok(actions) => {
            for action in actions {
                dispatch(action, workers, clients);
            }
        }
        Err(bug) => eprintln!("dask-rs scheduler: {bug}"),
    }
}

fn dispatch(
    action: Action,
    workers: &HashMap<WorkerId, Peer>,
    clients: &HashMap<ClientId, UnboundedSender<Message>>,
) {
    let (tx, msg) = match action {
        Action::Compute {
            worker,
            key,
            run_spec,
            who_has,
            ..
        } => {
            let who_has = who_has
                .into_iter()
                .map(|(k, ws)| {
                    (
                        k,
                        ws.iter()
                            .filter_map(|w| workers.get(w))
                            .map(|p| p.data_addr.clone())
                            .collect(),
                    )
                })
                .collect();
            let msg = ToWorker::Compute {
                key,
                run_spec: run_spec.to_vec(),
                who_has,
            };
            (
                workers.get(&worker).map(|p| &p.tx),
                messages::message("compute", &msg),
            )
        }
        Action::Free { worker, keys } => (
            workers.get(&worker).map(|p| &p.tx),
            messages::message("free", &ToWorker::Free { keys }),
        ),
        Action::Steal { worker, key } => (
            workers.get(&worker).map(|p| &p.tx),
            messages::message("steal", &ToWorker::Steal { key }),
        ),
        Action::Report {
            client,
            key,
            outcome,
        } => (
            clients.get(&client),
            messages::message("report", &ToClient::Report { key, outcome }),
        ),
    };
    if let (Some(tx), Ok(msg)) = (tx, msg) {
        let _ = tx.send(msg);
    }
}
