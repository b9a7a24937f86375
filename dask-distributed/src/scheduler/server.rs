//! The scheduler process: accepts workers and clients over TCP and drives the
//! [`SchedulerState`] with their messages.
//!
//! One task (the *core*) owns the state; every connection has a reading task
//! that turns messages into core events and a writing task fed by a channel.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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

/// Starts a scheduler listening on `addr` (use port 0 to let the OS pick).
pub async fn start(addr: &str) -> Result<SchedulerHandle> {
    start_with_plugins(addr, Vec::new()).await
}

/// [`start`], with plugins registered on the scheduler (see
/// [`super::plugin`]; the dashboard is one).
pub async fn start_with_plugins(
    addr: &str,
    plugins: Vec<Box<dyn super::plugin::SchedulerPlugin>>,
) -> Result<SchedulerHandle> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Connect {
            addr: addr.to_owned(),
            source,
        })?;
    let addr = listener.local_addr()?;
    let (tx, rx) = unbounded_channel();
    let core = tokio::spawn(core(rx, plugins));
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
}

async fn core(
    mut rx: UnboundedReceiver<CoreEvent>,
    plugins: Vec<Box<dyn super::plugin::SchedulerPlugin>>,
) {
    let mut state = SchedulerState::new();
    for plugin in plugins {
        state.add_plugin(plugin);
    }
    let mut workers: HashMap<WorkerId, Peer> = HashMap::new();
    let mut clients: HashMap<ClientId, UnboundedSender<Message>> = HashMap::new();
    while let Some(event) = rx.recv().await {
        let stimulus = match event {
            CoreEvent::WorkerJoined {
                id,
                nthreads,
                data_addr,
                tx,
            } => {
                state.plugins_mut().worker_address(id, &data_addr); // scheduler plugins
                workers.insert(id, Peer { tx, data_addr });
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
        let actions = match state.handle(stimulus) {
            Ok(actions) => actions,
            Err(bug) => {
                eprintln!("dask-rs scheduler: {bug}");
                continue;
            }
        };
        for action in actions {
            dispatch(action, &workers, &clients);
        }
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
