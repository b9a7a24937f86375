//! The [`Client`]: submits graphs to a scheduler and gathers results from
//! workers. Implements [`dask_core::Scheduler`], so any collection's
//! `compute_with(&client)` runs on the cluster.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::AtomicU8;
use std::sync::{Arc, Mutex, PoisonError};

use dask_core::{Graph, Key, Plan, Scheduler, Value};
use tokio::runtime::Runtime;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;

use crate::messages::{self, Answer, Query, StoredTask, SubmittedTask, ToScheduler};
use crate::protocol::{self, encode_task, Message, Role};
use crate::scheduler::coordination::{CoordReply, CoordRequest};
use crate::scheduler::state::{Outcome, TaskError};
use crate::{Error, Result};

/// How long [`Inner::look_before_sleep`] keeps a waiting thread awake:
/// longer than a short task's round trip (100-250 µs between processes
/// here), short enough that a long wait burns little CPU.
const LOOK_BEFORE_SLEEP: std::time::Duration = std::time::Duration::from_micros(500);

mod connection;
mod inline;

pub use connection::{
    ClientOptions, DEFAULT_PING_INTERVAL, DEFAULT_PING_TIMEOUT, DEFAULT_RECONNECT_TIMEOUT,
};

type WhoHas = Vec<(Key, Vec<String>)>;

/// Who gets a coordination reply: a blocking wait's channel or an async one's.
pub(crate) type CoordWaiter = Box<dyn FnOnce(CoordReply) + Send>;

/// A graph handed to the scheduler: waiters for the wanted keys and every
/// key of the plan.
pub(crate) struct Submitted {
    pub(crate) receivers: Vec<(Key, oneshot::Receiver<Reported>)>,
    pub(crate) keys: Vec<Key>,
}

/// What the client knows about a key it holds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Reported {
    /// In memory on a worker.
    Memory,
    /// Failed (itself or a dependency).
    Erred(TaskError),
    /// Cancelled (by this or another client).
    Cancelled,
}

impl From<Outcome> for Reported {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Memory => Reported::Memory,
            Outcome::Erred(e) => Reported::Erred(e),
        }
    }
}

/// Task options as they go to the scheduler.
#[derive(Debug, Clone, Default)]
pub(crate) struct TaskOptions {
    pub(crate) priority: i64,
    pub(crate) retries: u32,
    pub(crate) workers: Option<Vec<String>>,
}

/// A task made by `submit` or `map`, before it is sent.
pub(crate) struct NewTask {
    pub(crate) key: Key,
    pub(crate) task: dask_core::Task,
    pub(crate) dependencies: Vec<Key>,
}

/// A worker as the scheduler knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerInfo {
    /// Its data address: what `workers` restrictions and scatter name.
    pub addr: String,
    /// Its task threads.
    pub nthreads: u32,
}

/// Someone waiting for a key's next report.
pub(crate) enum Waiter {
    /// One key's waiter, given the report.
    One(oneshot::Sender<Reported>),
    /// A batch waiting for many keys (a gather), woken once: when the last
    /// of them is in memory, or at the first that is not.
    Batch(Arc<BatchWait>),
}

impl Waiter {
    fn send(self, report: Reported) {
        match self {
            Waiter::One(tx) => {
                let _ = tx.send(report);
            }
            Waiter::Batch(batch) => batch.report(&report),
        }
    }

    fn is_closed(&self) -> bool {
        match self {
            Waiter::One(tx) => tx.is_closed(),
            Waiter::Batch(batch) => batch
                .done
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
                .is_none_or(oneshot::Sender::is_closed),
        }
    }
}

/// The shared state of a [`Waiter::Batch`].
pub(crate) struct BatchWait {
    remaining: std::sync::atomic::AtomicUsize,
    done: Mutex<Option<oneshot::Sender<()>>>,
}

impl BatchWait {
    fn report(&self, report: &Reported) {
        let last = || {
            self.remaining
                .fetch_sub(1, std::sync::atomic::Ordering::AcqRel)
                == 1
        };
        if *report != Reported::Memory || last() {
            let done = self
                .done
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(done) = done {
                let _ = done.send(());
            }
        }
    }
}

#[derive(Default)]
struct Pending {
    reports: HashMap<Key, Vec<Waiter>>,
    who_has: HashMap<u64, oneshot::Sender<WhoHas>>,
    answers: HashMap<u64, oneshot::Sender<Answer>>,
    /// Waiters for coordination replies (see [`crate::coordination`]),
    /// called with the reply; dropped unanswered when the connection is lost.
    coordination: HashMap<u64, CoordWaiter>,
    next_request: u64,
    /// How many computes and futures want each key: the scheduler is told to
    /// release a key only when the last one is done with it.
    wanted: HashMap<Key, usize>,
    /// Last report for each wanted key, for futures asked after it arrived.
    outcomes: HashMap<Key, Reported>,
    /// Small values that came with their reports, until gathered.
    inline: inline::InlineValues,
    /// Cancelled keys: later reports for them are ignored until resubmitted.
    cancelled: HashSet<Key>,
    /// Keys let go of but not yet told to the scheduler: dropping many
    /// futures sends one release message, not one per future. Sent before
    /// any other message, so the scheduler sees events in the client's order.
    releasing: Vec<Key>,
    /// Who-has and query requests not answered yet, sent again after a
    /// reconnection (their answers may have been lost).
    resend: BTreeMap<u64, Message>,
    /// When the scheduler last sent anything (pings detect a hung one).
    last_heard: Option<std::time::Instant>,
    /// The connection dropped and the client is reconnecting: coordination
    /// requests fail at once (the scheduler released the client's locks
    /// and waits), everything else waits for the new connection.
    reconnecting: bool,
    closed: bool,
}

impl Pending {
    /// Marks a held key cancelled and wakes its waiters.
    fn mark_cancelled(&mut self, key: &Key) {
        if !self.wanted.contains_key(key) {
            return;
        }
        self.cancelled.insert(key.clone());
        self.inline.remove(key);
        self.outcomes.insert(key.clone(), Reported::Cancelled);
        for waiter in self.reports.remove(key).unwrap_or_default() {
            waiter.send(Reported::Cancelled);
        }
    }

    /// Sends the buffered releases (before any other message goes).
    fn flush_releases(&mut self, tx: &UnboundedSender<Message>) {
        if self.releasing.is_empty() {
            return;
        }
        let keys = std::mem::take(&mut self.releasing);
        if let Ok(m) = messages::message("release", &ToScheduler::ReleaseKeys { keys }) {
            let _ = tx.send(m);
        }
    }

    fn next_id(&mut self) -> u64 {
        self.next_request += 1;
        self.next_request
    }
}

/// A connection to a scheduler.
///
/// Blocking methods run on the client's own small tokio runtime, so they work
/// from plain threads. A dropped connection is reconnected (see
/// [`ClientOptions`]): back within the scheduler's grace period, the client
/// keeps its futures and pending waits continue. If the scheduler is gone,
/// hung or restarted, every pending wait fails with a typed error instead
/// of hanging.
pub struct Client {
    inner: Arc<Inner>,
    /// The cluster this client started (`Client::new`), stopped with the client.
    cluster: Option<crate::LocalCluster>,
}

/// The connection and its bookkeeping, shared by the client and its futures.
pub(crate) struct Inner {
    runtime: Arc<ClientRuntime>,
    /// To the connection task, which forwards to the current connection.
    tx: UnboundedSender<Message>,
    pending: Arc<Mutex<Pending>>,
    addr: String,
    /// Why the connection closed for good (see [`connection::lost_error`]).
    lost: Arc<AtomicU8>,
    /// Told when the connection task ended (its goodbye written).
    ended: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    /// Whether the workers run in this process (tasks go through `local`).
    in_process: bool,
    /// The scheduler's instance id: in-process tasks are filed under it.
    scheduler_instance: u64,
    /// Connections to workers' data ports, reused across gathers.
    peers: crate::worker::PeerPool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Client(scheduler={})", self.inner.addr)
    }
}

/// Like Dask's repr: `Client(scheduler=tcp://.., workers=2, threads=4,
/// memory=.., dashboard=http://../status)`. A client that owns its cluster
/// describes it; otherwise it asks the scheduler for its workers.
impl std::fmt::Display for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(cluster) = &self.cluster {
            let text = cluster.to_string();
            let fields = text.strip_prefix("LocalCluster(").unwrap_or(&text);
            return write!(f, "Client({fields}");
        }
        match self.workers() {
            Ok(ws) => write!(
                f,
                "Client(scheduler=tcp://{}, workers={}, threads={})",
                self.inner.addr,
                ws.len(),
                ws.iter().map(|w| u64::from(w.nthreads)).sum::<u64>()
            ),
            Err(_) => write!(
                f,
                "Client(scheduler=tcp://{}, unreachable)",
                self.inner.addr
            ),
        }
    }
}

impl Client {
    /// Connects to the scheduler at `addr` (`host:port`), without token or TLS.
    pub fn connect(addr: &str) -> Result<Client> {
        Client::connect_with(addr, crate::Security::default())
    }

    /// Connects to the scheduler at `addr` with a token and/or TLS (see
    /// [`crate::security`]); the same credentials serve to fetch results
    /// from workers.
    ///
    /// Errors: [`Error::Unauthorized`] when the scheduler refuses them,
    /// [`Error::Tls`] when the TLS handshake fails.
    pub fn connect_with(addr: &str, security: crate::Security) -> Result<Client> {
        Client::connect_with_options(addr, ClientOptions::with_security(security))
    }

    /// Connects to the scheduler at `addr` with `options`: credentials, and
    /// how the client reconnects after its connection drops (it keeps its
    /// futures when it is back within the scheduler's grace period) and
    /// detects a hung scheduler.
    ///
    /// Errors: as [`Client::connect_with`], and [`Error::InvalidConfig`]
    /// for inconsistent timeouts. Later, waits fail with
    /// [`Error::SchedulerLost`] when reconnecting fails and
    /// [`Error::SchedulerRestarted`] when another scheduler answers there.
    pub fn connect_with_options(addr: &str, options: ClientOptions) -> Result<Client> {
        Ok(Client {
            inner: Arc::new(Inner::connect(addr, false, options)?),
            cluster: None,
        })
    }

    /// Starts a [`LocalCluster`](crate::LocalCluster) with default settings (one
    /// worker, a thread per core) and connects to it, like Dask's `Client()`.
    /// The cluster stops with the client.
    pub fn new() -> Result<Client> {
        Client::with_cluster(crate::LocalCluster::builder().start()?)
    }

    /// Connects to `cluster` and owns it: it stops when the client is dropped.
    /// Its workers share this process, so tasks are handed over without
    /// encoding: closures and values without codecs work.
    pub fn with_cluster(cluster: crate::LocalCluster) -> Result<Client> {
        Ok(Client {
            inner: Arc::new(Inner::connect(
                &cluster.scheduler_addr(),
                true,
                ClientOptions::with_security(cluster.security().clone()),
            )?),
            cluster: Some(cluster),
        })
    }

    /// Closes this client and stops the cluster it owns, if it started one
    /// (`Client::new`), like Dask's `client.shutdown()`. Dropping the client
    /// does the same; this makes the end explicit.
    pub fn shutdown(self) {
        if let Some(cluster) = &self.cluster {
            // Its scheduler goes on purpose: nothing to reconnect to.
            self.inner.mark_closed();
            cluster.shutdown();
        }
    }

    /// The cluster this client owns, if it started one.
    pub fn cluster(&self) -> Option<&crate::LocalCluster> {
        self.cluster.as_ref()
    }

    /// The scheduler's address.
    pub fn scheduler_addr(&self) -> &str {
        &self.inner.addr
    }

    /// Computes `outputs` of `graph` on the cluster.
    pub fn compute_graph(&self, graph: &Graph, outputs: &[Key]) -> Result<Vec<Value>> {
        self.inner.compute_graph(graph, outputs)
    }

    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }

    /// A client over an existing connection (a worker client).
    pub(crate) fn from_inner(inner: Arc<Inner>) -> Client {
        Client {
            inner,
            cluster: None,
        }
    }

    /// The workers connected to the scheduler, sorted by address.
    pub fn workers(&self) -> Result<Vec<WorkerInfo>> {
        self.inner.block_on(self.inner.workers())?
    }

    /// Where the values of `keys` are held: data addresses of the workers
    /// holding each (empty while not in memory).
    pub fn who_has(&self, keys: &[Key]) -> Result<Vec<(Key, Vec<String>)>> {
        self.inner.block_on(self.inner.who_has(keys))?
    }

    /// The scheduler-side state of `key` (`None`: the scheduler does not know
    /// it, e.g. it was released and forgotten). A task restricted to workers
    /// that are all gone shows [`Status::NoWorker`](crate::scheduler::state::Status).
    pub fn task_state(&self, key: &Key) -> Result<Option<crate::scheduler::state::Status>> {
        let query = Query::TaskStatus {
            keys: vec![key.clone()],
        };
        match self.inner.block_on(self.inner.query(query))?? {
            Answer::TaskStatus(mut s) if s.len() == 1 => Ok(s.pop().flatten()),
            other => Err(unexpected_answer(&other)),
        }
    }
}

fn unexpected_answer(answer: &Answer) -> Error {
    Error::Malformed {
        what: "answer",
        detail: format!("unexpected answer {answer:?}"),
    }
}

impl Inner {
    /// One more holder of `key` (a cloned future).
    pub(crate) fn retain(&self, key: &Key) {
        let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        *p.wanted.entry(key.clone()).or_default() += 1;
    }

    /// Submits tasks whose dependencies are keys the client holds (or
    /// earlier tasks of the batch), in one message, and holds each key once
    /// (the caller's futures release them).
    pub(crate) fn submit_tasks(&self, items: Vec<NewTask>, options: &TaskOptions) -> Result<()> {
        // Encode first: nothing is counted or sent if a task cannot go.
        let mut prepared = Vec::with_capacity(items.len());
        for item in items {
            let wire = if self.in_process {
                None
            } else {
                let (task, frames) = encode_task(&item.key, &item.task)?;
                let stored = StoredTask::Wire {
                    task,
                    frames: frames.into_iter().map(|b| b.to_vec()).collect(),
                };
                Some(protocol::encode("task", &stored)?.to_vec())
            };
            prepared.push((item, wire));
        }
        let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if p.closed {
            return Err(self.lost());
        }
        let mut tasks = Vec::with_capacity(prepared.len());
        let mut wanted = Vec::with_capacity(prepared.len());
        for (item, wire) in prepared {
            let NewTask {
                key,
                task,
                dependencies,
            } = item;
            let run_spec = match wire {
                Some(bytes) => bytes,
                None => {
                    // The scheduler removes it from the table when it lets
                    // go of the task (see `local::held_run_spec`).
                    let token = crate::local::put_task(self.scheduler_instance, Arc::new(task));
                    let stored = StoredTask::Local {
                        pid: std::process::id(),
                        token,
                    };
                    protocol::encode("task", &stored)?.to_vec()
                }
            };
            *p.wanted.entry(key.clone()).or_default() += 1;
            if p.cancelled.remove(&key) {
                p.outcomes.remove(&key); // submitted again: computed again
            }
            tasks.push(SubmittedTask {
                priority: options.priority,
                retries: options.retries,
                workers: options.workers.clone(),
                ..SubmittedTask::new(key.clone(), dependencies, run_spec, 0)
            });
            wanted.push(key);
        }
        let update = ToScheduler::UpdateGraph { tasks, wanted };
        p.flush_releases(&self.tx);
        self.tx
            .send(messages::message("update-graph", &update)?)
            .map_err(|_| self.lost())
    }

    /// The report for `key` if one arrived, else a waiter for it.
    pub(crate) fn outcome_or_waiter(
        &self,
        key: &Key,
    ) -> Result<std::result::Result<Reported, oneshot::Receiver<Reported>>> {
        let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(o) = p.outcomes.get(key) {
            return Ok(Ok(o.clone()));
        }
        if p.closed {
            return Err(self.lost());
        }
        let (tx, rx) = oneshot::channel();
        p.reports
            .entry(key.clone())
            .or_default()
            .push(Waiter::One(tx));
        Ok(Err(rx))
    }

    /// The reports of `keys` (in order; `None` for one not reported yet),
    /// and, when some are not reported, one waiter woken when the last of
    /// them is in memory or at the first that is not.
    #[allow(clippy::type_complexity)]
    pub(crate) fn outcomes_or_batch_waiter(
        &self,
        keys: &[Key],
    ) -> Result<(Vec<Option<Reported>>, Option<oneshot::Receiver<()>>)> {
        let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let outcomes: Vec<Option<Reported>> =
            keys.iter().map(|k| p.outcomes.get(k).cloned()).collect();
        let mut pending: Vec<&Key> = keys
            .iter()
            .zip(&outcomes)
            .filter(|(_, o)| o.is_none())
            .map(|(k, _)| k)
            .collect();
        if pending.is_empty() {
            return Ok((outcomes, None));
        }
        if p.closed {
            return Err(self.lost());
        }
        pending.sort();
        pending.dedup();
        let (tx, rx) = oneshot::channel();
        let batch = Arc::new(BatchWait {
            remaining: pending.len().into(),
            done: Mutex::new(Some(tx)),
        });
        for k in pending {
            p.reports
                .entry(k.clone())
                .or_default()
                .push(Waiter::Batch(batch.clone()));
        }
        Ok((outcomes, Some(rx)))
    }

    /// Before a blocking wait for `key`'s report sleeps: looks for the report
    /// for up to [`LOOK_BEFORE_SLEEP`] (or `limit`, if shorter), yielding the
    /// CPU between looks. A short task's report then finds this thread
    /// awake: on a VM, waking a thread whose vCPU halted costs tens of µs,
    /// about a quarter of a round trip to worker processes. It does not look
    /// inside a task (a worker client: its task thread is handed back at
    /// once), inside an async runtime (whose thread it would hold), or on one
    /// CPU (where looking only delays the threads that make the report).
    pub(crate) fn look_before_sleep(&self, key: &Key, limit: std::time::Duration) {
        static ONE_CPU: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let one_cpu = *ONE_CPU
            .get_or_init(|| std::thread::available_parallelism().map_or(true, |n| n.get() == 1));
        if one_cpu
            || crate::worker_client::in_task_thread()
            || tokio::runtime::Handle::try_current().is_ok()
        {
            return;
        }
        let deadline = std::time::Instant::now() + LOOK_BEFORE_SLEEP.min(limit);
        loop {
            {
                let p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
                if p.closed || p.outcomes.contains_key(key) {
                    return;
                }
            }
            if std::time::Instant::now() >= deadline {
                return;
            }
            std::thread::yield_now();
        }
    }

    /// The last report for `key`, without waiting.
    pub(crate) fn outcome(&self, key: &Key) -> Option<Reported> {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .outcomes
            .get(key)
            .cloned()
    }

    /// The task error for a failed key: the original one from an in-process
    /// worker when there is one, else rebuilt from the report.
    pub(crate) fn failure(&self, e: TaskError) -> dask_core::Error {
        let original = self
            .in_process
            .then(|| crate::local::take_error(&e.key))
            .flatten();
        original.unwrap_or_else(|| remote_failure(e))
    }

    /// Runs `f` on the client's runtime from a plain thread (or a task's).
    pub(crate) fn block_on<T>(&self, f: impl std::future::Future<Output = T>) -> Result<T> {
        refuse_inside_runtime()?;
        Ok(self.runtime.block_on(f))
    }

    /// [`Inner::block_on`] for a wait on other tasks: inside a task, the
    /// task gives its worker thread back while it waits (see
    /// [`crate::worker_client`]).
    pub(crate) fn wait_on<T>(&self, f: impl std::future::Future<Output = T>) -> Result<T> {
        refuse_inside_runtime()?;
        let _seceded = crate::worker_client::WaitGuard::enter();
        Ok(self.runtime.block_on(f))
    }

    /// Runs `f` in the background on the client's runtime.
    pub(crate) fn spawn(&self, f: impl std::future::Future<Output = ()> + Send + 'static) {
        self.runtime.spawn(f);
    }

    /// The client's runtime, to spawn background work that can be aborted.
    pub(crate) fn runtime_handle(&self) -> tokio::runtime::Handle {
        self.runtime.handle().clone()
    }

    /// Whether tasks and values go through the in-process tables.
    pub(crate) fn in_process(&self) -> bool {
        self.in_process
    }

    /// The pool of connections to workers' data ports.
    pub(crate) fn peers(&self) -> &crate::worker::PeerPool {
        &self.peers
    }

    /// Cancels held keys: their futures report cancelled at once, and the
    /// scheduler releases them and their dependents.
    pub(crate) fn cancel(&self, keys: Vec<Key>) -> Result<()> {
        let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        for k in &keys {
            p.mark_cancelled(k);
        }
        if p.closed {
            return Err(self.lost());
        }
        self.send(&mut p, "cancel", &ToScheduler::Cancel { keys })
    }

    /// Reruns held keys that erred (and the erred tasks they read): their
    /// futures are pending again.
    pub(crate) fn retry(&self, keys: Vec<Key>) -> Result<()> {
        let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if p.closed {
            return Err(self.lost());
        }
        let mut erred = Vec::new();
        for k in keys {
            if matches!(p.outcomes.get(&k), Some(Reported::Erred(_))) {
                p.outcomes.remove(&k);
                if self.in_process {
                    crate::local::remove_errors([&k]);
                }
                erred.push(k);
            }
        }
        if erred.is_empty() {
            return Ok(());
        }
        self.send(&mut p, "retry", &ToScheduler::Retry { keys: erred })
    }

    /// Asks the scheduler to keep `keys` until they finish, whoever holds them.
    pub(crate) fn fire_and_forget(&self, keys: Vec<Key>) -> Result<()> {
        let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if p.closed {
            return Err(self.lost());
        }
        self.send(
            &mut p,
            "fire-and-forget",
            &ToScheduler::FireAndForget { keys },
        )
    }

    /// Holds `keys` (scattered values just stored on `workers`) and tells the
    /// scheduler where they are; `lost` is the encoded task each key runs if
    /// every copy is lost.
    pub(crate) fn register_data(
        &self,
        keys: Vec<(Key, u64, Vec<u8>)>,
        workers: Vec<String>,
    ) -> Result<()> {
        let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if p.closed {
            return Err(self.lost());
        }
        for (k, _, _) in &keys {
            *p.wanted.entry(k.clone()).or_default() += 1;
        }
        self.send(
            &mut p,
            "update-data",
            &ToScheduler::UpdateData { keys, workers },
        )
    }

    /// Asks the scheduler a question.
    pub(crate) async fn query(&self, query: Query) -> Result<Answer> {
        let (tx, rx) = oneshot::channel();
        {
            let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            if p.closed {
                return Err(self.lost());
            }
            let id = p.next_id();
            p.answers.insert(id, tx);
            self.send_resendable(&mut p, id, "query", &ToScheduler::Query { id, query })?;
        }
        rx.await.map_err(|_| self.lost())
    }

    /// Sends a coordination request; its reply is given to `waiter`, which
    /// is dropped unanswered if the scheduler connection is lost. Never
    /// blocks (no runtime is entered).
    pub(crate) fn coordination(&self, request: CoordRequest, waiter: CoordWaiter) -> Result<()> {
        let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if p.closed || p.reconnecting {
            return Err(self.lost());
        }
        let id = p.next_id();
        p.coordination.insert(id, waiter);
        self.send(
            &mut p,
            "coordination",
            &ToScheduler::Coordination { id, request },
        )
    }

    /// Holds `key`, which the scheduler already counts as wanted by this
    /// client (a future received from a queue or variable), and asks for
    /// its state, so the future gets its report even if the scheduler's
    /// first one came before this count.
    pub(crate) fn want_known(&self, key: &Key) -> Result<()> {
        let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if p.closed {
            return Err(self.lost());
        }
        *p.wanted.entry(key.clone()).or_default() += 1;
        if p.cancelled.remove(key) {
            p.outcomes.remove(key);
        }
        let update = ToScheduler::UpdateGraph {
            tasks: Vec::new(),
            wanted: vec![key.clone()],
        };
        self.send(&mut p, "update-graph", &update)
    }

    /// Whether the scheduler connection is gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .closed
    }

    /// Marks the connection closed on purpose (its scheduler is being shut
    /// down here): losing it then ends the client quietly, no reconnecting.
    pub(crate) fn mark_closed(&self) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .closed = true;
    }

    /// The connected workers.
    pub(crate) async fn workers(&self) -> Result<Vec<WorkerInfo>> {
        match self.query(Query::Workers).await? {
            Answer::Workers(list) => Ok(list
                .into_iter()
                .map(|(addr, nthreads)| WorkerInfo { addr, nthreads })
                .collect()),
            other => Err(unexpected_answer(&other)),
        }
    }

    /// Checks that every address names a connected worker.
    pub(crate) async fn check_workers(&self, addrs: &[String]) -> Result<()> {
        if addrs.is_empty() {
            return Err(Error::InvalidConfig {
                message: "`workers` names no worker: give at least one worker address \
                          (see Client::workers), or leave the restriction out"
                    .into(),
            });
        }
        let known: Vec<String> = self.workers().await?.into_iter().map(|w| w.addr).collect();
        match addrs.iter().find(|a| !known.contains(a)) {
            Some(addr) => Err(Error::UnknownWorker {
                addr: addr.clone(),
                known,
            }),
            None => Ok(()),
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        p.flush_releases(&self.tx);
        // Closed, or reconnecting (nobody forwards messages): no goodbye.
        let gone = p.closed || p.reconnecting;
        drop(p);
        if gone {
            return;
        }
        // Goodbye: the scheduler releases what this client held now, not
        // after its reconnect grace period. Wait (briefly) until it is
        // written: the runtime stops with the client.
        if let Ok(m) = messages::message("goodbye", &ToScheduler::Goodbye) {
            if self.tx.send(m).is_ok() {
                let ended = self
                    .ended
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                if let Some(ended) = ended {
                    let _ = ended.recv_timeout(std::time::Duration::from_secs(2));
                }
            }
        }
    }
}

impl Inner {
    /// A connection shared by several clients (the worker client).
    pub(crate) fn connect_shared(
        addr: &str,
        in_process: bool,
        security: crate::Security,
    ) -> Result<Arc<Inner>> {
        Ok(Arc::new(Inner::connect(
            addr,
            in_process,
            ClientOptions::with_security(security),
        )?))
    }

    /// The token and TLS this client's connections present.
    pub(crate) fn security(&self) -> &crate::Security {
        self.peers.security()
    }

    fn connect(addr: &str, in_process: bool, options: ClientOptions) -> Result<Inner> {
        refuse_inside_runtime()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("dask-client")
            .enable_all()
            .build()?;
        let pending: Arc<Mutex<Pending>> = Arc::default();
        let lost = Arc::new(AtomicU8::new(connection::LOST));
        let security = options.security.clone();
        let (link, conn, ended) = runtime.block_on(connection::first_connect(
            addr,
            options,
            pending.clone(),
            lost.clone(),
        ))?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let scheduler_instance = link.scheduler_instance();
        runtime.spawn(connection::run(link, conn, rx));
        Ok(Inner {
            runtime: Arc::new(ClientRuntime(Some(runtime))),
            tx,
            pending,
            addr: addr.to_owned(),
            lost,
            ended: Mutex::new(Some(ended)),
            in_process,
            scheduler_instance,
            peers: crate::worker::PeerPool::with_security(Role::Client, security),
        })
    }

    /// The instance id of the scheduler (see [`crate::local::put_task`]).
    #[cfg(test)]
    pub(crate) fn scheduler_instance(&self) -> u64 {
        self.scheduler_instance
    }

    /// The error of every wait and call once the scheduler connection is gone.
    pub(crate) fn lost(&self) -> Error {
        connection::lost_error(&self.addr, &self.lost)
    }

    /// The error for a key reported erred: [`Error::SuspiciousTask`] for a
    /// task that killed too many workers, else the task's failure.
    pub(crate) fn task_error(&self, e: TaskError) -> Error {
        match crate::scheduler::state::parse_suspicious(&e) {
            Some((deaths, allowed)) => Error::SuspiciousTask {
                key: e.key,
                deaths,
                allowed,
            },
            None => Error::Core(self.failure(e)),
        }
    }

    /// Sends `msg` after any buffered releases; `p` is the held lock.
    fn send(&self, p: &mut Pending, what: &'static str, msg: &ToScheduler) -> Result<()> {
        p.flush_releases(&self.tx);
        self.tx
            .send(messages::message(what, msg)?)
            .map_err(|_| self.lost())
    }

    /// [`Inner::send`] for request `id`, kept until answered and sent again
    /// after a reconnection.
    fn send_resendable(
        &self,
        p: &mut Pending,
        id: u64,
        what: &'static str,
        msg: &ToScheduler,
    ) -> Result<()> {
        p.flush_releases(&self.tx);
        let m = messages::message(what, msg)?;
        p.resend.insert(id, m.clone());
        self.tx.send(m).map_err(|_| self.lost())
    }

    fn compute_graph(self: &Arc<Self>, graph: &Graph, outputs: &[Key]) -> Result<Vec<Value>> {
        refuse_inside_runtime()?;
        let started = self.start_compute(graph, outputs)?;
        let _seceded = crate::worker_client::WaitGuard::enter();
        self.runtime.block_on(finish_compute(self.clone(), started))
    }

    /// The first half of a compute, which never waits: submits what
    /// `outputs` need of `graph`.
    pub(crate) fn start_compute(&self, graph: &Graph, outputs: &[Key]) -> Result<StartedCompute> {
        let mut wanted: Vec<Key> = outputs.to_vec();
        wanted.sort();
        wanted.dedup();
        let submitted = self.submit_graph(graph, &wanted)?;
        Ok(StartedCompute {
            outputs: outputs.to_vec(),
            wanted,
            submitted,
        })
    }

    /// Submits what `wanted` (sorted, without duplicates) needs of `graph`
    /// and holds each wanted key once (the caller releases them).
    pub(crate) fn submit_graph(&self, graph: &Graph, wanted: &[Key]) -> Result<Submitted> {
        let graph = crate::persist::unfuse(graph);
        let plan = Plan::new(&graph, wanted)?;
        // With in-process workers, tasks go through the local table (closures and
        // any value work). Otherwise encode everything first: an unregistered op
        // or a value without a codec is refused before anything is submitted.
        // In-process tasks: the scheduler takes them out of the table when
        // it lets go of them (`local::held_run_spec`); until the message is
        // sent, they are this function's to remove.
        let in_process = self.in_process;
        let mut tokens = Vec::new();
        let result = self.send_graph(&plan, wanted, in_process, &mut tokens);
        if result.is_err() {
            crate::local::remove_tasks(&tokens);
        }
        result
    }

    fn send_graph(
        &self,
        plan: &Plan,
        wanted: &[Key],
        in_process: bool,
        tokens: &mut Vec<u64>,
    ) -> Result<Submitted> {
        let mut tasks = Vec::with_capacity(plan.len());
        for i in 0..plan.len() {
            let key = plan.key(i);
            let stored = if in_process {
                let token =
                    crate::local::put_task(self.scheduler_instance, plan.shared_task(i).clone());
                tokens.push(token);
                StoredTask::Local {
                    pid: std::process::id(),
                    token,
                }
            } else {
                let (task, frames) = encode_task(key, plan.task(i))?;
                StoredTask::Wire {
                    task,
                    frames: frames.into_iter().map(|b| b.to_vec()).collect(),
                }
            };
            tasks.push(SubmittedTask::new(
                key.clone(),
                plan.dependencies(i)
                    .iter()
                    .map(|&d| plan.key(d as usize).clone())
                    .collect(),
                protocol::encode("task", &stored)?.to_vec(),
                i as u64,
            ));
        }
        let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if p.closed {
            return Err(self.lost());
        }
        // Waiters, counts and the message under one lock, so message order
        // follows the counts.
        let receivers = wanted
            .iter()
            .map(|k| {
                let (tx, rx) = oneshot::channel();
                p.reports
                    .entry(k.clone())
                    .or_default()
                    .push(Waiter::One(tx));
                *p.wanted.entry(k.clone()).or_default() += 1;
                if p.cancelled.remove(k) {
                    p.outcomes.remove(k);
                }
                (k.clone(), rx)
            })
            .collect();
        let update = ToScheduler::UpdateGraph {
            tasks,
            wanted: wanted.to_vec(),
        };
        p.flush_releases(&self.tx);
        self.tx
            .send(messages::message("update-graph", &update)?)
            .map_err(|_| self.lost())?;
        Ok(Submitted {
            receivers,
            keys: plan.keys().to_vec(),
        })
    }

    /// Waits for every report; the first failure (with its original error
    /// from an in-process worker) or cancellation is the error.
    pub(crate) async fn await_reports(
        &self,
        receivers: Vec<(Key, oneshot::Receiver<Reported>)>,
    ) -> Result<()> {
        let mut failure: Option<TaskError> = None;
        for (key, rx) in receivers {
            match rx.await.map_err(|_| self.lost())? {
                Reported::Memory => {}
                Reported::Erred(e) => {
                    failure.get_or_insert(e);
                }
                Reported::Cancelled => return Err(Error::Cancelled { key }),
            }
        }
        match failure {
            Some(e) => Err(self.task_error(e)),
            None => Ok(()),
        }
    }

    /// Done with `keys`: the scheduler releases those no other compute wants.
    pub(crate) fn release(&self, keys: &[Key]) {
        let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let mut unwanted = Vec::new();
        for k in keys {
            if let Some(n) = p.wanted.get_mut(k) {
                *n -= 1;
                if *n == 0 {
                    p.wanted.remove(k);
                    p.outcomes.remove(k);
                    p.inline.remove(k);
                    p.cancelled.remove(k);
                    // Nobody can wait for it any more (as_completed helpers end).
                    p.reports.remove(k);
                    if self.in_process {
                        // An original error nobody took (a retried attempt's, say).
                        crate::local::remove_errors([k]);
                    }
                    unwanted.push(k.clone());
                }
            }
        }
        if unwanted.is_empty() || p.closed {
            return;
        }
        // Buffered: futures dropped one by one go out in one message, sent
        // by a task on the client's runtime (or by the next message).
        let first = p.releasing.is_empty();
        p.releasing.extend(unwanted);
        if first {
            let (pending, tx) = (self.pending.clone(), self.tx.clone());
            self.runtime.spawn(async move {
                tokio::task::yield_now().await;
                pending
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .flush_releases(&tx);
            });
        }
    }

    /// Registers a waiter for the next report of each key.
    fn expect_reports(&self, keys: &[Key]) -> Result<Vec<(Key, oneshot::Receiver<Reported>)>> {
        let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if p.closed {
            return Err(self.lost());
        }
        Ok(keys
            .iter()
            .map(|k| {
                let (tx, rx) = oneshot::channel();
                p.reports
                    .entry(k.clone())
                    .or_default()
                    .push(Waiter::One(tx));
                (k.clone(), rx)
            })
            .collect())
    }

    /// Gathers `keys` (all reported in memory): values that came with their
    /// reports first, then the others from their workers. A key lost
    /// meanwhile with its worker is waited for while the scheduler
    /// recomputes it: waiters are registered before asking where keys are,
    /// so no report slips between.
    pub(crate) async fn gather(&self, keys: &[Key]) -> Result<HashMap<Key, Value>> {
        const MAX_ATTEMPTS: usize = 50;
        let mut values = {
            let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            p.inline.take(keys)
        };
        if values.len() == keys.len() {
            return Ok(values);
        }
        let mut remaining: Vec<Key> = keys
            .iter()
            .filter(|k| !values.contains_key(*k))
            .cloned()
            .collect();
        for _ in 0..MAX_ATTEMPTS {
            let receivers = self.expect_reports(&remaining)?;
            let who_has = self.who_has(&remaining).await?;
            let (got, missing) = fetch_available(&self.peers, &who_has).await;
            values.extend(got);
            if missing.is_empty() {
                self.drop_stale_waiters(&remaining);
                return Ok(values);
            }
            for (key, rx) in receivers {
                if !missing.contains(&key) {
                    continue;
                }
                match rx.await.map_err(|_| self.lost())? {
                    Reported::Erred(e) => return Err(self.task_error(e)),
                    Reported::Cancelled => return Err(Error::Cancelled { key }),
                    Reported::Memory => {}
                }
            }
            remaining = missing;
        }
        Err(Error::Malformed {
            what: "gather",
            detail: format!(
                "results kept being lost with their workers ({} attempts)",
                MAX_ATTEMPTS
            ),
        })
    }

    fn drop_stale_waiters(&self, keys: &[Key]) {
        let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        for k in keys {
            if let Some(waiters) = p.reports.get_mut(k) {
                waiters.retain(|w| !w.is_closed());
                if waiters.is_empty() {
                    p.reports.remove(k);
                }
            }
        }
    }

    async fn who_has(&self, keys: &[Key]) -> Result<WhoHas> {
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            if p.closed {
                return Err(self.lost());
            }
            let id = p.next_id();
            p.who_has.insert(id, tx);
            id
        };
        let request = ToScheduler::WhoHas {
            id,
            keys: keys.to_vec(),
        };
        {
            let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            self.send_resendable(&mut p, id, "who-has", &request)?;
        }
        rx.await.map_err(|_| self.lost())
    }
}

/// The client's own runtime. Its last owner may be a future or client
/// dropped inside async code (an [`AsyncClient`](crate::AsyncClient)'s),
/// where dropping a runtime would panic: there it shuts down in the
/// background instead.
struct ClientRuntime(Option<Runtime>);

impl std::ops::Deref for ClientRuntime {
    type Target = Runtime;
    fn deref(&self) -> &Runtime {
        self.0.as_ref().expect("taken only in drop")
    }
}

impl Drop for ClientRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                runtime.shutdown_background();
            }
        }
    }
}

/// The blocking client cannot wait inside an async runtime (tokio would
/// panic); a task's thread on a worker may (it is a blocking thread).
fn refuse_inside_runtime() -> Result<()> {
    if tokio::runtime::Handle::try_current().is_ok() && !crate::worker_client::in_task_thread() {
        return Err(Error::InsideRuntime);
    }
    Ok(())
}

/// Fetches what `who_has` says is available, one request per worker; keys no
/// live worker could give are returned as missing.
async fn fetch_available(
    peers: &crate::worker::PeerPool,
    who_has: &WhoHas,
) -> (HashMap<Key, Value>, Vec<Key>) {
    let mut by_worker: BTreeMap<&str, Vec<Key>> = BTreeMap::new();
    let mut values = HashMap::new();
    let mut missing = Vec::new();
    for (key, addrs) in who_has {
        if let Some(v) = addrs.iter().find_map(|a| crate::local::read(a, key)) {
            values.insert(key.clone(), v);
        } else if let Some(addr) = addrs.first() {
            by_worker.entry(addr).or_default().push(key.clone());
        } else {
            missing.push(key.clone());
        }
    }
    // One request per worker, all in flight at once.
    let requests = by_worker.into_iter().map(|(addr, keys)| async move {
        let fetched = peers.fetch(addr, &keys).await;
        (keys, fetched)
    });
    for (keys, fetched) in join_all(requests.collect()).await {
        match fetched {
            Ok(fetched) => values.extend(keys.into_iter().zip(fetched)),
            Err(_) => missing.extend(keys), // the worker died meanwhile
        }
    }
    (values, missing)
}

/// Runs `futures` concurrently on this task and gives their outputs in order.
async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (f, out) in futures.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *out = Some(v),
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// A compute submitted by [`Inner::start_compute`], finished by [`finish_compute`].
pub(crate) struct StartedCompute {
    outputs: Vec<Key>,
    wanted: Vec<Key>,
    submitted: Submitted,
}

/// The second half of a compute: waits for the reports, gathers the
/// outputs (in `outputs` order) and lets go of everything.
pub(crate) async fn finish_compute(
    inner: Arc<Inner>,
    started: StartedCompute,
) -> Result<Vec<Value>> {
    let StartedCompute {
        outputs,
        wanted,
        submitted: Submitted { receivers, keys },
    } = started;
    let result = async {
        inner.await_reports(receivers).await?;
        inner.gather(&wanted).await
    }
    .await;
    inner.release(&wanted);
    if inner.in_process {
        crate::local::remove_errors(&keys);
    }
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
        self.compute_graph(graph, outputs).map_err(to_core)
    }

    fn persist(&self, graph: &Graph, outputs: &[Key]) -> dask_core::Result<Graph> {
        self.persist_graph(graph, outputs).map_err(to_core)
    }
}

/// This crate's error as the `Scheduler` trait's: a suspicious task is a
/// failure of its key (the typed error is its source).
fn to_core(e: Error) -> dask_core::Error {
    match e {
        Error::Core(core) => core,
        Error::SuspiciousTask { ref key, .. } => dask_core::Error::TaskFailed {
            key: key.clone(),
            op: crate::scheduler::state::SUSPICIOUS_OP.into(),
            message: e.to_string(),
            source: Box::new(e),
        },
        other => dask_core::Error::Scheduler {
            scheduler: "distributed".into(),
            message: other.to_string(),
        },
    }
}
