//! The scheduler process: accepts workers and clients over TCP and drives the
//! [`SchedulerState`] with their messages.
//!
//! One task (the *core*) owns the state; every connection has a reading task
//! that turns messages into core events and a writing task fed by a channel.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::task::JoinHandle;

use super::state::{
    Action, ClientId, Event, Outcome, Priority, SchedulerState, TaskError, TaskSpec, WorkerId,
};
use dask_core::{Key, KeySet};

use crate::messages::{self, Answer, Query, SubmittedTask, ToClient, ToScheduler, ToWorker};
use crate::protocol::{self, Limits, Message, Role};
use crate::task_stream::TaskStream;
use crate::{Error, Result};

/// A running scheduler; dropping the handle does not stop it, [`SchedulerHandle::shutdown`] does.
pub struct SchedulerHandle {
    addr: SocketAddr,
    accept: JoinHandle<()>,
    core: JoinHandle<()>,
    task_stream: TaskStream,
}

impl SchedulerHandle {
    /// The address workers and clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The task stream the scheduler records (see [`crate::task_stream`]).
    pub fn task_stream(&self) -> TaskStream {
        self.task_stream.clone()
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
        /// A new id, used unless the client resumes an old one.
        id: ClientId,
        /// The connection (to tell a reconnected client's old connection
        /// ending from its new one ending).
        conn: u64,
        tx: UnboundedSender<Message>,
        /// From `Identify`: the old id, the keys the client holds, and where
        /// to answer with the id the connection speaks for.
        resume: Option<Resume>,
    },
    /// A worker's message, with its data frames.
    FromWorker(WorkerId, ToScheduler, Vec<bytes::Bytes>),
    FromClient(ClientId, ToScheduler),
    WorkerLeft(WorkerId),
    ClientLeft {
        client: ClientId,
        conn: u64,
    },
    /// Futures' keys held by queues and variables, or given to a client.
    CoordinationKeys(Vec<super::coordination::KeyOp>),
}

/// A client's `Identify`: its old id (if any), the keys it holds, and the
/// channel the core answers on with the id the connection speaks for.
type Resume = (
    Option<ClientId>,
    Vec<Key>,
    tokio::sync::oneshot::Sender<ClientId>,
);

/// How long a worker may stay silent (no heartbeat) before the scheduler
/// removes it, by default (Dask's `distributed.scheduler.worker-ttl`).
pub const DEFAULT_WORKER_TTL: Duration = Duration::from_secs(300);

/// How long the scheduler keeps a disconnected client's futures for it to
/// reconnect, by default.
pub const DEFAULT_CLIENT_RECONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A scheduler's settings.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// A worker silent for longer than this is removed and its data recomputed.
    pub worker_ttl: Duration,
    /// Whether idle workers steal tasks not yet started from busy ones.
    pub work_stealing: bool,
    /// How many workers may die while running one task before it errs as
    /// suspicious ([`crate::Error::SuspiciousTask`]) instead of running again.
    pub allowed_failures: u32,
    /// Token and TLS required of every worker and client.
    pub security: crate::Security,
    /// Task-stream records kept (the newest; 0: none).
    pub task_stream_capacity: usize,
    /// How long a client whose connection dropped keeps its futures: one
    /// reconnecting within it gets them back; after it, what it held is
    /// released (zero: at once). A client that closes says goodbye and is
    /// released at once.
    pub client_reconnect_timeout: Duration,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        SchedulerOptions {
            worker_ttl: DEFAULT_WORKER_TTL,
            work_stealing: true,
            allowed_failures: super::state::DEFAULT_ALLOWED_FAILURES,
            security: crate::Security::default(),
            task_stream_capacity: crate::task_stream::DEFAULT_TASK_STREAM_CAPACITY,
            client_reconnect_timeout: DEFAULT_CLIENT_RECONNECT_TIMEOUT,
        }
    }
}

/// Starts a scheduler listening on `addr` (use port 0 to let the OS pick).
pub async fn start(addr: &str) -> Result<SchedulerHandle> {
    start_with(addr, SchedulerOptions::default()).await
}

/// Starts a scheduler with `options`, listening on `addr`.
pub async fn start_with(addr: &str, options: SchedulerOptions) -> Result<SchedulerHandle> {
    start_full(addr, options, Vec::new()).await
}

/// [`start`], with plugins registered on the scheduler (see
/// [`super::plugin`]; the dashboard is one).
pub async fn start_with_plugins(
    addr: &str,
    plugins: Vec<Box<dyn super::plugin::SchedulerPlugin>>,
) -> Result<SchedulerHandle> {
    start_full(addr, SchedulerOptions::default(), plugins).await
}

/// Starts a scheduler with `options` and `plugins`, listening on `addr`.
pub async fn start_full(
    addr: &str,
    options: SchedulerOptions,
    plugins: Vec<Box<dyn super::plugin::SchedulerPlugin>>,
) -> Result<SchedulerHandle> {
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
    let security = Arc::new(options.security.clone());
    let task_stream = TaskStream::new(options.task_stream_capacity);
    let core = tokio::spawn(core(
        rx,
        tx.downgrade(),
        options,
        plugins,
        task_stream.clone(),
    ));
    let ids = Arc::new(AtomicU64::new(1));
    let accept = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve_connection(
                stream,
                tx.clone(),
                ids.clone(),
                security.clone(),
            ));
        }
    });
    Ok(SchedulerHandle {
        addr,
        accept,
        core,
        task_stream,
    })
}

async fn serve_connection(
    stream: TcpStream,
    core: UnboundedSender<CoreEvent>,
    ids: Arc<AtomicU64>,
    security: Arc<crate::Security>,
) {
    let conn =
        match protocol::accept_with(stream, Role::Scheduler, Limits::default(), &security).await {
            Ok(conn) => conn,
            Err(e) => {
                // Foreign peer, failed TLS or token: refused before any message.
                log_refusal("scheduler", &e);
                return;
            }
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
                        let _ = core.send(CoreEvent::FromWorker(id, msg, m.frames));
                    }
                    Err(_) => break, // a malformed message ends the connection
                }
            }
            let _ = core.send(CoreEvent::WorkerLeft(id));
        }
        Role::Client => {
            // A client identifies itself first (a reconnecting one gets its
            // old id back); a peer that does not is a new client.
            let Ok(first) = reader.recv().await else {
                return;
            };
            let Ok(first) = messages::header::<ToScheduler>("client", &first) else {
                return; // a malformed message ends the connection
            };
            let (first, resume, reply) = match first {
                ToScheduler::Identify { client, wanted } => {
                    let (reply, answer) = tokio::sync::oneshot::channel();
                    (None, Some((client, wanted, reply)), Some(answer))
                }
                other => (Some(other), None, None),
            };
            let _ = core.send(CoreEvent::ClientJoined {
                id,
                conn: id,
                tx,
                resume,
            });
            // The id this connection speaks for (the old one when resumed).
            let client = match reply {
                Some(answer) => match answer.await {
                    Ok(client) => client,
                    Err(_) => return,
                },
                None => id,
            };
            if let Some(msg) = first {
                let _ = core.send(CoreEvent::FromClient(client, msg));
            }
            while let Ok(m) = reader.recv().await {
                match messages::header::<ToScheduler>("client", &m) {
                    Ok(msg) => {
                        let _ = core.send(CoreEvent::FromClient(client, msg));
                    }
                    Err(_) => break,
                }
            }
            let _ = core.send(CoreEvent::ClientLeft { client, conn: id });
        }
        Role::Scheduler => {}
    }
}

/// Logs a refused connection (wrong token, failed TLS, foreign bytes); a
/// peer that connected and left without a word is not worth a line.
pub(crate) fn log_refusal(who: &str, e: &Error) {
    match e {
        Error::Closed | Error::Io(_) => {}
        Error::Refused { .. } => eprintln!("dask-rs {who}: {e}"),
        other => eprintln!("dask-rs {who}: refused a connection: {other}"),
    }
}

struct Peer {
    tx: UnboundedSender<Message>,
    data_addr: String,
    /// The data address, shared by its task-stream records.
    stream_name: Arc<str>,
    last_seen: tokio::time::Instant,
}

/// Most events the core takes from its channel at once.
const CORE_BATCH: usize = 256;

/// The client id under which the scheduler holds fire-and-forget keys until
/// they finish (real clients are numbered from 1).
pub const FIRE_AND_FORGET: ClientId = 0;

/// The client id under which the scheduler holds the keys of futures put
/// in coordination queues and variables (counted per key in the core).
pub const COORDINATION_HOLDER: ClientId = ClientId::MAX;

async fn core(
    mut rx: UnboundedReceiver<CoreEvent>,
    to_core: tokio::sync::mpsc::WeakUnboundedSender<CoreEvent>,
    options: SchedulerOptions,
    plugins: Vec<Box<dyn super::plugin::SchedulerPlugin>>,
    task_stream: TaskStream,
) {
    let mut state = SchedulerState::new()
        .with_work_stealing(options.work_stealing)
        .with_allowed_failures(options.allowed_failures);
    for plugin in plugins {
        state.add_plugin(plugin);
    }
    let mut workers: HashMap<WorkerId, Peer> = HashMap::new();
    let mut clients: HashMap<ClientId, UnboundedSender<Message>> = HashMap::new();
    let mut cancelled = RecentlyCancelled::default();
    let mut ignored = IgnoredMessages::default();
    // Key holds come back through the core's own channel (weakly held, so
    // the core still ends when every connection is gone), in order with
    // the clients' messages.
    let coordination =
        super::coordination_service::CoordinationService::spawn(Box::new(move |ops| {
            if let Some(tx) = to_core.upgrade() {
                let _ = tx.send(CoreEvent::CoordinationKeys(ops));
            }
        }));
    let mut coordination_holds: HashMap<Key, usize> = HashMap::new();
    let mut ttl_check =
        tokio::time::interval((options.worker_ttl / 4).max(Duration::from_millis(10)));
    ttl_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let instance = scheduler_instance_id();
    // However the core ends (stopped, aborted), tasks submitted to it from
    // this process leave the in-process table with it.
    let _forget_tasks = ForgetTasks(instance);
    // Which connection each client speaks through, and when each
    // disconnected client's grace period ends.
    let mut client_conns: HashMap<ClientId, u64> = HashMap::new();
    let mut disconnected: HashMap<ClientId, tokio::time::Instant> = HashMap::new();
    let grace = options.client_reconnect_timeout;
    let mut grace_check =
        tokio::time::interval((grace / 4).clamp(Duration::from_millis(10), Duration::from_secs(1)));
    grace_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Events are taken in batches: every event already queued is handled
    // before the core waits again, so the messages they cause leave together
    // (each connection's writer sends what was queued with one flush).
    let mut batch = Vec::with_capacity(CORE_BATCH);
    loop {
        tokio::select! {
            n = rx.recv_many(&mut batch, CORE_BATCH) => if n == 0 {
                break;
            },
            _ = grace_check.tick(), if !disconnected.is_empty() => {
                let now = tokio::time::Instant::now();
                let expired: Vec<ClientId> = disconnected
                    .iter()
                    .filter(|(_, end)| now >= **end)
                    .map(|(c, _)| *c)
                    .collect();
                for client in expired {
                    disconnected.remove(&client);
                    apply(&mut state, vec![Event::RemoveClient { client }], &workers, &clients, None);
                }
                continue;
            }
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
                    let removed = vec![Event::RemoveWorker { worker: id }];
                    apply(&mut state, removed, &workers, &clients, None);
                }
                continue;
            }
        };
        for event in batch.drain(..) {
            // A finished task's value sent with its report, for the clients
            // that wait for it.
            let mut value = None;
            let stimuli = match event {
                CoreEvent::WorkerJoined {
                    id,
                    nthreads,
                    data_addr,
                    tx,
                } => {
                    state.plugins_mut().worker_address(id, &data_addr); // scheduler plugins
                    workers.insert(
                        id,
                        Peer {
                            tx,
                            stream_name: data_addr.as_str().into(),
                            data_addr,
                            last_seen: tokio::time::Instant::now(),
                        },
                    );
                    vec![Event::AddWorker {
                        worker: id,
                        nthreads,
                    }]
                }
                CoreEvent::WorkerLeft(id) => {
                    workers.remove(&id);
                    vec![Event::RemoveWorker { worker: id }]
                }
                CoreEvent::ClientJoined {
                    id,
                    conn,
                    tx,
                    resume,
                } => {
                    let Some((old, wanted, reply)) = resume else {
                        clients.insert(id, tx);
                        client_conns.insert(id, conn);
                        continue;
                    };
                    // Back within the grace period (or before its old connection
                    // was seen to end): the same client, its futures kept.
                    let resumed = old.filter(|c| {
                        *c != FIRE_AND_FORGET
                            && (disconnected.remove(c).is_some() || clients.contains_key(c))
                    });
                    let client = resumed.unwrap_or(id);
                    if resumed.is_some() {
                        // An old connection still open is replaced (and closes).
                        coordination.client_left(client);
                    }
                    clients.insert(client, tx.clone());
                    client_conns.insert(client, conn);
                    let _ = reply.send(client);
                    let welcome = ToClient::Welcome {
                        client,
                        scheduler: instance,
                        resumed: resumed.is_some(),
                    };
                    if let Ok(m) = messages::message("welcome", &welcome) {
                        let _ = tx.send(m);
                    }
                    if resumed.is_none() {
                        continue;
                    }
                    resume_client(&state, client, wanted)
                }
                CoreEvent::ClientLeft { client, conn } => {
                    if client_conns.get(&client) != Some(&conn) {
                        continue; // an old connection of a client that reconnected
                    }
                    client_conns.remove(&client);
                    clients.remove(&client);
                    coordination.client_left(client);
                    if grace.is_zero() {
                        vec![Event::RemoveClient { client }]
                    } else {
                        disconnected.insert(client, tokio::time::Instant::now() + grace);
                        continue;
                    }
                }
                CoreEvent::FromWorker(worker, msg, frames) => match msg {
                    ToScheduler::TaskFinished {
                        key,
                        run_id,
                        nbytes,
                        timing,
                        value: tag,
                    } => {
                        if let Some(p) = workers.get(&worker) {
                            task_stream.push(key.clone(), &p.stream_name, timing, true);
                        }
                        if state.is_stale_report(worker, &key, run_id) {
                            continue;
                        }
                        state.record_duration(&key, timing.stop - timing.start);
                        if let (Some(tag), [frame]) = (tag, &frames[..]) {
                            value = Some(ReportedValue {
                                key: key.clone(),
                                tag,
                                frame: frame.clone(),
                            });
                        }
                        vec![Event::TaskFinished {
                            worker,
                            key,
                            nbytes,
                        }]
                    }
                    ToScheduler::TaskErred {
                        key,
                        run_id,
                        op,
                        message,
                        timing,
                    } => {
                        if let (Some(p), Some(timing)) = (workers.get(&worker), timing) {
                            task_stream.push(key.clone(), &p.stream_name, timing, false);
                        }
                        if state.is_stale_report(worker, &key, run_id) {
                            continue;
                        }
                        vec![Event::TaskErred {
                            worker,
                            key: key.clone(),
                            error: TaskError { key, op, message },
                        }]
                    }
                    ToScheduler::MissingData {
                        key,
                        run_id,
                        dependency,
                        errant,
                    } if !state.is_stale_report(worker, &key, run_id) => vec![Event::MissingData {
                        worker,
                        key,
                        dependency,
                        errant: workers
                            .iter()
                            .filter(|(_, p)| errant.contains(&p.data_addr))
                            .map(|(id, _)| *id)
                            .collect(),
                    }],
                    ToScheduler::MissingData { .. } => continue, // a stale attempt's
                    ToScheduler::StealResponse { key, stolen } => vec![Event::StealResponse {
                        worker,
                        key,
                        stolen,
                    }],
                    ToScheduler::LongRunning { key } => vec![Event::LongRunning { worker, key }],
                    ToScheduler::Heartbeat { metrics } => {
                        let Some(p) = workers.get_mut(&worker) else {
                            continue; // already removed
                        };
                        p.last_seen = tokio::time::Instant::now();
                        if let Ok(m) = messages::message("heartbeat-ack", &ToWorker::HeartbeatAck) {
                            let _ = p.tx.send(m);
                        }
                        let paused = metrics.status == crate::metrics::WorkerStatus::Paused;
                        let was = state.workers().get(&worker).map(|w| w.paused);
                        if was == Some(paused) {
                            continue; // nothing changed for placement
                        }
                        vec![Event::Heartbeat { worker, paused }]
                    }
                    other => {
                        ignored.note("worker", &other);
                        continue;
                    }
                },
                CoreEvent::FromClient(client, ToScheduler::Goodbye) => {
                    // Released now; its connection ending later changes nothing.
                    client_conns.remove(&client);
                    clients.remove(&client);
                    coordination.client_left(client);
                    vec![Event::RemoveClient { client }]
                }
                CoreEvent::CoordinationKeys(ops) => {
                    coordination_key_events(ops, &mut coordination_holds, &clients)
                }
                CoreEvent::FromClient(client, msg) => {
                    if let ToScheduler::Coordination { id, request } = msg {
                        if let Some(tx) = clients.get(&client) {
                            coordination.request(client, tx.clone(), id, request);
                        }
                        continue;
                    }
                    if let ToScheduler::Query {
                        id,
                        query: query @ (Query::TaskStream { .. } | Query::WorkerMemory),
                    } = msg
                    {
                        let answer = diagnostics_answer(&state, &workers, &task_stream, query);
                        if let (Some(tx), Ok(m)) = (
                            clients.get(&client),
                            messages::message("answer", &ToClient::Answer { id, answer }),
                        ) {
                            let _ = tx.send(m);
                        }
                        continue;
                    }
                    from_client(&state, &workers, &clients, &mut cancelled, client, msg)
                        .unwrap_or_else(|other| {
                            ignored.note("client", &other);
                            Vec::new()
                        })
                }
            };
            apply(&mut state, stimuli, &workers, &clients, value.as_ref());
        }
    }
}

/// The events for futures' keys held by coordination queues and variables:
/// the first hold of a key makes [`COORDINATION_HOLDER`] want it, the last
/// release lets go; a client given a future wants it (if still connected).
fn coordination_key_events(
    ops: Vec<super::coordination::KeyOp>,
    holds: &mut HashMap<Key, usize>,
    clients: &HashMap<ClientId, UnboundedSender<Message>>,
) -> Vec<Event> {
    use super::coordination::KeyOp;
    let want = |client, key| Event::UpdateGraph {
        client,
        tasks: Vec::new(),
        wanted: vec![key],
    };
    let mut events = Vec::new();
    for op in ops {
        match op {
            KeyOp::Hold(key) => {
                let n = holds.entry(key.clone()).or_default();
                *n += 1;
                if *n == 1 {
                    events.push(want(COORDINATION_HOLDER, key));
                }
            }
            KeyOp::Release(key) => {
                let Some(n) = holds.get_mut(&key) else {
                    continue;
                };
                *n -= 1;
                if *n == 0 {
                    holds.remove(&key);
                    events.push(Event::ReleaseKeys {
                        client: COORDINATION_HOLDER,
                        keys: vec![key],
                    });
                }
            }
            KeyOp::Want { client, key } => {
                if clients.contains_key(&client) {
                    events.push(want(client, key));
                }
            }
        }
    }
    events
}

/// A small value a worker sent with its report of `key` (codec `tag`, in
/// `frame`), passed on in the scheduler's reports of that key to clients.
struct ReportedValue {
    key: Key,
    tag: String,
    frame: bytes::Bytes,
}

/// Feeds events to the state machine and dispatches its actions; reports of
/// `value`'s key carry the value; fire-and-forget keys are let go once they
/// reach a final state.
fn apply(
    state: &mut SchedulerState,
    stimuli: Vec<Event>,
    workers: &HashMap<WorkerId, Peer>,
    clients: &HashMap<ClientId, UnboundedSender<Message>>,
    value: Option<&ReportedValue>,
) {
    let mut queue: std::collections::VecDeque<Event> = stimuli.into();
    while let Some(stimulus) = queue.pop_front() {
        let actions = match state.handle(stimulus) {
            Ok(actions) => actions,
            Err(bug) => {
                eprintln!("dask-rs scheduler: {bug}");
                continue;
            }
        };
        let mut finished = Vec::new();
        for action in actions {
            match action {
                Action::Report {
                    client: FIRE_AND_FORGET,
                    key,
                    ..
                } => finished.push(key),
                action => dispatch(action, state, workers, clients, value),
            }
        }
        if !finished.is_empty() {
            queue.push_back(Event::ReleaseKeys {
                client: FIRE_AND_FORGET,
                keys: finished,
            });
        }
    }
}

/// Keys the scheduler cancelled lately (bounded): a submission reading one
/// of them raced with the cancellation and is cancelled too, while one reading
/// a key never known is refused as invalid by the state machine.
#[derive(Default)]
struct RecentlyCancelled {
    keys: KeySet,
    order: std::collections::VecDeque<Key>,
}

impl RecentlyCancelled {
    /// How many cancelled keys are remembered.
    const CAPACITY: usize = 100_000;

    fn insert(&mut self, key: Key) {
        if self.keys.insert(key.clone()) {
            self.order.push_back(key);
        }
        while self.order.len() > Self::CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.keys.remove(&old);
            }
        }
    }

    fn contains(&self, key: &Key) -> bool {
        self.keys.contains(key)
    }
}

/// Messages from the wrong role (a client claiming a task finished, a worker
/// submitting a graph): ignored, counted, and logged the first time only.
#[derive(Default)]
struct IgnoredMessages {
    count: u64,
}

impl IgnoredMessages {
    fn note(&mut self, from: &str, msg: &ToScheduler) {
        self.count += 1;
        if self.count == 1 {
            let what = format!("{msg:?}");
            let what: String = what.chars().take(80).collect();
            eprintln!(
                "dask-rs scheduler: ignoring a message a {from} may not send ({what}); \
                 further ones are ignored silently"
            );
        }
    }
}

/// The events a client's message makes; queries are answered at once. A
/// message a client may not send (a worker's) is given back as `Err`.
fn from_client(
    state: &SchedulerState,
    workers: &HashMap<WorkerId, Peer>,
    clients: &HashMap<ClientId, UnboundedSender<Message>>,
    cancelled: &mut RecentlyCancelled,
    client: ClientId,
    msg: ToScheduler,
) -> Result<Vec<Event>, Box<ToScheduler>> {
    let reply = |m: Result<Message>| {
        if let (Some(tx), Ok(m)) = (clients.get(&client), m) {
            let _ = tx.send(m);
        }
    };
    match msg {
        ToScheduler::UpdateGraph { tasks, wanted } => {
            let (tasks, wanted) = drop_orphans(state, cancelled, tasks, wanted, |keys| {
                reply(messages::message(
                    "cancelled",
                    &ToClient::Cancelled { keys },
                ))
            });
            Ok(vec![Event::UpdateGraph {
                client,
                tasks: tasks
                    .into_iter()
                    .map(|t| TaskSpec {
                        key: t.key,
                        dependencies: t.dependencies,
                        run_spec: crate::local::held_run_spec(t.run_spec),
                        priority: Priority {
                            user: t.priority.saturating_neg(),
                            order: t.order,
                            ..Default::default()
                        },
                        retries: t.retries,
                        restrictions: t.workers.map(|addrs| worker_ids(workers, &addrs)),
                    })
                    .collect(),
                wanted,
            }])
        }
        ToScheduler::ReleaseKeys { keys } => Ok(vec![Event::ReleaseKeys { client, keys }]),
        ToScheduler::Retry { keys } => Ok(vec![Event::Retry { keys }]),
        ToScheduler::Cancel { keys } => {
            let (events, notices) = cancel(state, client, keys);
            for (_, keys) in &notices {
                for key in keys {
                    cancelled.insert(key.clone());
                }
            }
            for (c, keys) in notices {
                if let Some(tx) = clients.get(&c) {
                    if let Ok(m) = messages::message("cancelled", &ToClient::Cancelled { keys }) {
                        let _ = tx.send(m);
                    }
                }
            }
            Ok(events)
        }
        ToScheduler::FireAndForget { keys } => Ok(vec![Event::UpdateGraph {
            client: FIRE_AND_FORGET,
            tasks: Vec::new(),
            wanted: keys,
        }]),
        ToScheduler::UpdateData {
            keys,
            workers: addrs,
        } => Ok(vec![Event::UpdateData {
            client,
            keys: keys
                .into_iter()
                .map(|(k, n, spec)| (k, n, crate::local::held_run_spec(spec)))
                .collect(),
            workers: worker_ids(workers, &addrs).into_iter().collect(),
        }]),
        ToScheduler::Query { id, query } => {
            let answer = answer(state, workers, query);
            reply(messages::message(
                "answer",
                &ToClient::Answer { id, answer },
            ));
            Ok(Vec::new())
        }
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
            reply(messages::message(
                "who-has",
                &ToClient::WhoHas { id, who_has },
            ));
            Ok(Vec::new())
        }
        ToScheduler::Coordination { .. } => Ok(Vec::new()), // served by the core
        ToScheduler::Ping => {
            reply(messages::message("pong", &ToClient::Pong));
            Ok(Vec::new())
        }
        other => Err(Box::new(other)),
    }
}

/// Drops the in-process tasks of a scheduler instance when dropped (see
/// [`crate::local::forget_scheduler`]).
struct ForgetTasks(u64);

impl Drop for ForgetTasks {
    fn drop(&mut self) {
        crate::local::forget_scheduler(self.0);
    }
}

/// A random id for this scheduler's start, told to clients in
/// [`ToClient::Welcome`]: a client that reconnects to the same address and
/// finds another id knows the scheduler restarted.
fn scheduler_instance_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.write_u32(std::process::id());
    h.finish().max(1)
}

/// The events that give a reconnected client back what it holds: keys kept
/// for it that it let go of meanwhile are released, and the keys it holds
/// are wanted again, which reports those already finished (reports sent
/// while it was away were lost). A held key the scheduler never got (its
/// submission was lost with the connection) is answered as erred.
fn resume_client(state: &SchedulerState, client: ClientId, wanted: Vec<Key>) -> Vec<Event> {
    let holds: KeySet = wanted.iter().cloned().collect();
    let stale: Vec<Key> = state
        .tasks()
        .filter(|t| t.who_wants.contains(&client) && !holds.contains(&t.key))
        .map(|t| t.key.clone())
        .collect();
    let mut events = Vec::new();
    if !stale.is_empty() {
        events.push(Event::ReleaseKeys {
            client,
            keys: stale,
        });
    }
    events.push(Event::UpdateGraph {
        client,
        tasks: Vec::new(),
        wanted,
    });
    events
}

/// Removes from a submission the new tasks that read a key the scheduler
/// cancelled meanwhile (e.g. by another client), and their dependents in the
/// submission; `cancelled` is told which (they count as cancelled, like
/// dependents of a cancelled task). A key never known is left to the state
/// machine's validation, which refuses the task with an error.
fn drop_orphans(
    state: &SchedulerState,
    recently: &mut RecentlyCancelled,
    mut tasks: Vec<SubmittedTask>,
    mut wanted: Vec<Key>,
    cancelled: impl FnOnce(Vec<Key>),
) -> (Vec<SubmittedTask>, Vec<Key>) {
    let mut available: KeySet = tasks.iter().map(|t| t.key.clone()).collect();
    let mut dropped = Vec::new();
    loop {
        let before = dropped.len();
        tasks.retain(|t| {
            let orphan = state.task(&t.key).is_none()
                && t.dependencies.iter().any(|d| {
                    state.task(d).is_none() && !available.contains(d) && recently.contains(d)
                });
            if orphan {
                available.remove(&t.key);
                dropped.push(t.key.clone());
            }
            !orphan
        });
        if dropped.len() == before {
            break;
        }
    }
    if !dropped.is_empty() {
        let gone: KeySet = dropped.iter().cloned().collect();
        wanted.retain(|k| !gone.contains(k));
        for key in &dropped {
            recently.insert(key.clone());
        }
        cancelled(dropped);
    }
    (tasks, wanted)
}

/// The ids of the live workers among data addresses (unknown ones are dropped:
/// a task restricted to no live worker waits in no-worker).
fn worker_ids(workers: &HashMap<WorkerId, Peer>, addrs: &[String]) -> BTreeSet<WorkerId> {
    workers
        .iter()
        .filter(|(_, p)| addrs.contains(&p.data_addr))
        .map(|(id, _)| *id)
        .collect()
}

fn answer(state: &SchedulerState, workers: &HashMap<WorkerId, Peer>, query: Query) -> Answer {
    match query {
        Query::Workers => {
            let mut list: Vec<(String, u32)> = state
                .workers()
                .iter()
                .filter_map(|(id, ws)| workers.get(id).map(|p| (p.data_addr.clone(), ws.nthreads)))
                .collect();
            list.sort();
            Answer::Workers(list)
        }
        Query::TaskStatus { keys } => Answer::TaskStatus(
            keys.iter()
                .map(|k| state.task(k).map(|t| t.status))
                .collect(),
        ),
        // The core answers these with its task stream; without one, empty.
        query @ (Query::TaskStream { .. } | Query::WorkerMemory) => {
            diagnostics_answer(state, workers, &TaskStream::new(0), query)
        }
    }
}

/// Answers the diagnostics queries (task stream, worker memory).
fn diagnostics_answer(
    state: &SchedulerState,
    workers: &HashMap<WorkerId, Peer>,
    task_stream: &TaskStream,
    query: Query,
) -> Answer {
    match query {
        Query::TaskStream { since, limit } => {
            let limit = usize::try_from(limit)
                .unwrap_or(usize::MAX)
                .min(crate::task_stream::TASK_STREAM_PAGE);
            Answer::TaskStream(task_stream.since(since, limit))
        }
        Query::WorkerMemory => {
            let mut list: Vec<(String, u32, u64)> = state
                .workers()
                .iter()
                .filter_map(|(id, ws)| {
                    workers
                        .get(id)
                        .map(|p| (p.data_addr.clone(), ws.nthreads, ws.nbytes))
                })
                .collect();
            list.sort();
            Answer::WorkerMemory(list)
        }
        other => answer(state, workers, other),
    }
}

/// What cancelling `keys` for `client` means: each key and its transitive
/// dependents that no other client wants is released for every client
/// wanting it (they are told: the second list); keys other clients also want
/// are only released for `client`.
fn cancel(
    state: &SchedulerState,
    client: ClientId,
    keys: Vec<Key>,
) -> (Vec<Event>, Vec<(ClientId, Vec<Key>)>) {
    let mut seen = KeySet::default();
    let mut stack = keys;
    let mut per_client: BTreeMap<ClientId, Vec<Key>> = BTreeMap::new();
    let mut own = Vec::new();
    while let Some(key) = stack.pop() {
        let Some(ts) = state.task(&key) else {
            continue;
        };
        if !seen.insert(key.clone()) {
            continue;
        }
        let shared = ts
            .who_wants
            .iter()
            .any(|c| *c != client && *c != FIRE_AND_FORGET);
        if shared {
            own.push(key);
            continue;
        }
        for c in &ts.who_wants {
            per_client.entry(*c).or_default().push(key.clone());
        }
        stack.extend(ts.dependents.iter().cloned());
    }
    let mut events = Vec::new();
    if !own.is_empty() {
        events.push(Event::ReleaseKeys { client, keys: own });
    }
    let mut notices = Vec::new();
    for (c, keys) in per_client {
        if c != FIRE_AND_FORGET {
            notices.push((c, keys.clone()));
        }
        events.push(Event::ReleaseKeys { client: c, keys });
    }
    (events, notices)
}

fn dispatch(
    action: Action,
    state: &SchedulerState,
    workers: &HashMap<WorkerId, Peer>,
    clients: &HashMap<ClientId, UnboundedSender<Message>>,
    value: Option<&ReportedValue>,
) {
    let (tx, msg) = match action {
        Action::Compute {
            worker,
            key,
            run_spec,
            run_id,
            who_has,
            priority,
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
            let report_value = state.task(&key).is_some_and(|t| !t.who_wants.is_empty());
            let msg = ToWorker::Compute {
                key,
                run_id,
                priority,
                run_spec: run_spec.to_vec(),
                who_has,
                report_value,
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
        } => {
            let value = value.filter(|v| v.key == key && matches!(outcome, Outcome::Memory));
            let report = ToClient::Report {
                key,
                outcome,
                value: value.map(|v| v.tag.clone()),
            };
            let frames = value.map(|v| vec![v.frame.clone()]).unwrap_or_default();
            (
                clients.get(&client),
                messages::message_with("report", &report, frames),
            )
        }
    };
    if let (Some(tx), Ok(msg)) = (tx, msg) {
        let _ = tx.send(msg);
    }
}
