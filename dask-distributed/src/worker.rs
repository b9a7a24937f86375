//! A worker: runs the tasks the scheduler sends, holds their results, and serves
//! them to peers and clients on its data port.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use dask_core::{codec, Key, Value};
use tokio::net::TcpListener;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

use crate::messages::{self, PeerReply, PeerRequest, StoredTask, ToScheduler, ToWorker};
use crate::metrics::{WorkerMetrics, WorkerStatus};
use crate::protocol::{self, decode_task, Connection, Limits, Message, Role};
use crate::scheduler::state::Priority;
use crate::spill::{MemoryThresholds, Store};
use crate::task_stream::{self, Lanes, TaskTiming};
use crate::{Error, Result};

use crate::local::{self, Memory};

/// How often a worker sends a heartbeat by default.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(500);

/// How long a worker waits for its scheduler to answer (its heartbeats are
/// acknowledged) before it takes the scheduler for hung and stops, by default.
pub const DEFAULT_SCHEDULER_TIMEOUT: Duration = Duration::from_secs(60);

/// How often a worker with a memory limit checks its memory.
const MEMORY_MONITOR_INTERVAL: Duration = Duration::from_millis(100);

/// A worker's settings.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Task threads (at least 1).
    pub nthreads: u32,
    /// Memory limit in bytes (`None`: no limit, nothing is spilled).
    pub memory_limit: Option<u64>,
    /// Fractions of the limit at which to spill, pause and terminate.
    pub thresholds: MemoryThresholds,
    /// Where the per-worker spill directory is created (default: the system's
    /// temporary directory).
    pub local_directory: Option<PathBuf>,
    /// How often to send a heartbeat.
    pub heartbeat_interval: Duration,
    /// A scheduler that sends nothing (not even heartbeat acknowledgements)
    /// for this long (at least two heartbeat intervals) is taken for hung:
    /// the worker logs it and stops, as when the connection drops.
    pub scheduler_timeout: Duration,
    /// Whether to measure the process's resident memory against the spill
    /// and terminate thresholds: right for a worker alone in its process
    /// (`dask worker`), wrong for workers sharing one (a threads LocalCluster).
    pub monitor_process_memory: bool,
    /// Token and TLS: presented to the scheduler and to peers, required of
    /// whoever fetches data from this worker.
    pub security: crate::Security,
}

impl WorkerOptions {
    /// Defaults with `nthreads` threads: no memory limit, Dask's thresholds.
    pub fn new(nthreads: u32) -> WorkerOptions {
        WorkerOptions {
            nthreads,
            memory_limit: None,
            thresholds: MemoryThresholds::default(),
            local_directory: None,
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            scheduler_timeout: DEFAULT_SCHEDULER_TIMEOUT,
            monitor_process_memory: false,
            security: crate::Security::default(),
        }
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        if self.nthreads == 0 {
            return Err(Error::InvalidConfig {
                message: "a worker needs at least 1 thread (nthreads = 0)".into(),
            });
        }
        if self.memory_limit == Some(0) {
            return Err(Error::InvalidConfig {
                message: "memory limit 0: give a positive number of bytes, or no limit".into(),
            });
        }
        if self.heartbeat_interval.is_zero() {
            return Err(Error::InvalidConfig {
                message: "heartbeat interval must be positive".into(),
            });
        }
        if self.scheduler_timeout.is_zero() {
            return Err(Error::InvalidConfig {
                message: "scheduler timeout must be positive (default 60 s)".into(),
            });
        }
        self.thresholds.validate()
    }

    fn bytes_at(&self, fraction: f64) -> Option<u64> {
        self.memory_limit.map(|l| (l as f64 * fraction) as u64)
    }
}

/// A running worker.
pub struct WorkerHandle {
    data_addr: String,
    main: JoinHandle<()>,
    data: JoinHandle<()>,
    shared: Arc<Shared>,
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

    /// Stops sending heartbeats while keeping every connection open, as a hung
    /// process would (for failure tests): the scheduler drops the worker once
    /// its heartbeat timeout passes.
    pub fn stop_heartbeats(&self) {
        self.shared.heartbeats.store(false, Ordering::Relaxed);
    }

    /// The worker's metrics now.
    pub fn metrics(&self) -> WorkerMetrics {
        self.shared.metrics()
    }

    /// The directory the worker spills to (it exists once something spilled,
    /// and is removed when the worker stops).
    pub fn spill_directory(&self) -> PathBuf {
        self.shared.store.dir().to_path_buf()
    }

    /// Whether the worker has stopped (killed, or its scheduler went away).
    pub fn is_finished(&self) -> bool {
        self.main.is_finished()
    }

    /// Waits until the worker stops: its scheduler connection ended (`Ok`),
    /// or its process went above the terminate threshold
    /// ([`Error::MemoryExceeded`]).
    pub async fn finished(self) -> Result<()> {
        let WorkerHandle {
            main,
            data,
            data_addr,
            shared,
        } = self;
        let _ = main.await;
        local::unregister_worker(&data_addr);
        data.abort();
        if shared.terminated.load(Ordering::Relaxed) {
            let o = &shared.options;
            return Err(Error::MemoryExceeded {
                used: shared.process_memory.load(Ordering::Relaxed),
                threshold: o.bytes_at(o.thresholds.terminate).unwrap_or(0),
            });
        }
        Ok(())
    }
}

/// What a worker's tasks share.
struct Shared {
    store: Memory,
    /// Task threads; a task that secedes gives its permit back.
    slots: Arc<Semaphore>,
    peers: PeerPool,
    options: WorkerOptions,
    data_addr: String,
    heartbeats: AtomicBool,
    paused: AtomicBool,
    process_memory: AtomicU64,
    /// Set when the worker stopped itself above its terminate threshold.
    terminated: AtomicBool,
    executing: AtomicU64,
    ready: AtomicU64,
    executed: AtomicU64,
    stolen: AtomicU64,
    started_inline: AtomicU64,
    /// The scheduler's address, for tasks' coordination primitives.
    scheduler: Arc<str>,
    /// Task-thread numbers, for the task stream.
    lanes: Lanes,
    /// Tasks waiting for a thread (see [`HandOver`]).
    handover: HandOver,
}

impl Shared {
    fn metrics(&self) -> WorkerMetrics {
        let process_memory = self
            .options
            .monitor_process_memory
            .then(|| self.process_memory.load(Ordering::Relaxed));
        WorkerMetrics {
            status: if self.paused.load(Ordering::Relaxed) {
                WorkerStatus::Paused
            } else {
                WorkerStatus::Running
            },
            memory_limit: self.options.memory_limit,
            store: self.store.stats(),
            process_memory,
            tasks_executing: self.executing.load(Ordering::Relaxed),
            tasks_ready: self.ready.load(Ordering::Relaxed),
            tasks_executed: self.executed.load(Ordering::Relaxed),
            tasks_stolen: self.stolen.load(Ordering::Relaxed),
            tasks_started_inline: self.started_inline.load(Ordering::Relaxed),
        }
    }

    /// The size of a result: its registered sizeof; for other types, with a
    /// memory limit, the length of its encoding (exact but costs an encode),
    /// and without one, a nominal [`dask_core::sizeof::DEFAULT_SIZEOF`].
    fn sizeof(&self, value: &Value) -> u64 {
        use dask_core::sizeof;
        sizeof::sizeof_registered(value).unwrap_or_else(|| {
            if self.options.memory_limit.is_some() {
                sizeof::sizeof_value(value)
            } else {
                sizeof::DEFAULT_SIZEOF
            }
        })
    }

    /// The check before a task starts (cheap: the store's managed bytes,
    /// and the process memory the monitor measured last): above the pause
    /// threshold, spill down to the target; still above, pause (the monitor
    /// resumes the worker once memory is freed) and say no.
    fn room_to_start(&self) -> bool {
        let o = &self.options;
        let Some(limit) = o.memory_limit else {
            return true;
        };
        let pause_at = o.bytes_at(o.thresholds.pause).unwrap_or(limit);
        let rss = if o.monitor_process_memory {
            self.process_memory.load(Ordering::Relaxed)
        } else {
            0
        };
        let mut managed = self.store.stats().memory_bytes;
        if managed.max(rss) > pause_at {
            let target = o.bytes_at(o.thresholds.target).unwrap_or(limit);
            self.store.spill_to(target);
            managed = self.store.stats().memory_bytes;
        }
        if managed > pause_at {
            self.paused.store(true, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Spills, pauses or stops by the thresholds; false: stop the worker.
    fn check_memory(&self) -> bool {
        let o = &self.options;
        let Some(limit) = o.memory_limit else {
            return true;
        };
        let managed = self.store.stats().memory_bytes;
        let mut used = managed;
        if o.monitor_process_memory {
            if let Some(mut rss) = process_memory() {
                let target = o.bytes_at(o.thresholds.target).unwrap_or(limit);
                if rss > o.bytes_at(o.thresholds.spill).unwrap_or(limit) {
                    // Spill what the process holds above the target, then
                    // have malloc give the freed memory back.
                    self.store
                        .spill_to(managed.saturating_sub(rss.saturating_sub(target)));
                    crate::alloc::release_free_memory();
                    rss = process_memory().unwrap_or(rss);
                }
                self.process_memory.store(rss, Ordering::Relaxed);
                if rss > o.bytes_at(o.thresholds.terminate).unwrap_or(limit) {
                    self.terminated.store(true, Ordering::Relaxed);
                    eprintln!(
                        "dask-rs worker {}: process memory {rss} bytes is above the terminate \
                         threshold ({:.0}% of {limit}); stopping",
                        self.data_addr,
                        o.thresholds.terminate * 100.0
                    );
                    return false;
                }
                used = used.max(rss);
            }
        }
        let pause = used > o.bytes_at(o.thresholds.pause).unwrap_or(limit);
        self.paused.store(pause, Ordering::Relaxed);
        true
    }
}

/// The process's resident memory in bytes (Linux; `None` elsewhere).
pub fn process_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Starts a worker with `nthreads` task threads, connected to the scheduler at
/// `scheduler_addr`; its data port listens on 127.0.0.1 with an OS-chosen port.
pub async fn start(scheduler_addr: &str, nthreads: u32) -> Result<WorkerHandle> {
    start_with(scheduler_addr, WorkerOptions::new(nthreads)).await
}

/// A task's progress, for work stealing: only a pending task can be stolen.
const PENDING: u8 = 0;
const STARTED: u8 = 1;
const STOLEN: u8 = 2;
/// Freed by the scheduler: its result, if it still comes, must not be kept.
const CANCELLED: u8 = 3;

struct Running {
    abort: tokio::task::AbortHandle,
    phase: Arc<AtomicU8>,
    /// The scheduler's number for the attempt: the newest `Compute` of the
    /// key while it runs, read when the report is sent.
    run_id: Arc<AtomicU64>,
}

/// Starts a worker with `options`, connected to the scheduler at
/// `scheduler_addr`; its data port listens on 127.0.0.1 with an OS-chosen port.
pub async fn start_with(scheduler_addr: &str, options: WorkerOptions) -> Result<WorkerHandle> {
    options.validate()?;
    let target = options.bytes_at(options.thresholds.target);
    let memory: Memory = Arc::new(Store::new(target, options.local_directory.as_deref()));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let data_addr = listener.local_addr()?.to_string();
    local::register_worker(&data_addr, memory.clone());
    let data = tokio::spawn(serve_data(
        listener,
        memory.clone(),
        options.security.clone(),
        data_addr.clone(),
    ));
    let conn = match protocol::connect_with(
        scheduler_addr,
        Role::Worker,
        Limits::default(),
        &options.security,
    )
    .await
    {
        Ok(conn) => conn,
        Err(e) => {
            local::unregister_worker(&data_addr);
            data.abort();
            return Err(e);
        }
    };
    let (mut reader, writer) = conn.split();
    let (tx, writer) = writer.spawn_joinable();
    let register = ToScheduler::RegisterWorker {
        nthreads: options.nthreads,
        data_addr: data_addr.clone(),
    };
    tx.send(messages::message("register", &register)?)
        .map_err(|_| Error::Closed)?;
    let shared = Arc::new(Shared {
        store: memory,
        slots: Arc::new(Semaphore::new(options.nthreads.max(1) as usize)),
        peers: PeerPool::with_security(Role::Worker, options.security.clone()),
        data_addr: data_addr.clone(),
        heartbeats: AtomicBool::new(true),
        paused: AtomicBool::new(false),
        process_memory: AtomicU64::new(0),
        terminated: AtomicBool::new(false),
        executing: AtomicU64::new(0),
        ready: AtomicU64::new(0),
        executed: AtomicU64::new(0),
        stolen: AtomicU64::new(0),
        started_inline: AtomicU64::new(0),
        scheduler: Arc::from(scheduler_addr),
        lanes: Lanes::new(options.nthreads.max(1)),
        handover: HandOver::default(),
        options,
    });
    let worker = shared.clone();
    let main = tokio::spawn(async move {
        // The connection closes when the worker stops, even while a task
        // attempt (and its sender) outlives it, blocked on its thread.
        let _writer = AbortOnDrop(writer);
        // Dropping the set (kill) aborts every running task.
        let mut running = JoinSet::new();
        let mut running_keys: HashMap<Key, Running> = HashMap::new();
        let mut heartbeat = tokio::time::interval(worker.options.heartbeat_interval);
        let mut monitor = tokio::time::interval(MEMORY_MONITOR_INTERVAL);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        monitor.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The reader runs on its own (a read is not cancel-safe) and stamps
        // every message, so a silent scheduler is noticed between them.
        let (msgs_tx, mut msgs) = tokio::sync::mpsc::unbounded_channel();
        let heard = Arc::new(Mutex::new(tokio::time::Instant::now()));
        let reader_heard = heard.clone();
        let _reader = AbortOnDrop(tokio::spawn(async move {
            while let Ok(m) = reader.recv().await {
                *reader_heard.lock().unwrap_or_else(PoisonError::into_inner) =
                    tokio::time::Instant::now();
                if msgs_tx.send(m).is_err() {
                    break;
                }
            }
        }));
        loop {
            let m = tokio::select! {
                m = msgs.recv() => match m {
                    Some(m) => m,
                    None => break,
                },
                _ = heartbeat.tick() => {
                    if worker.heartbeats.load(Ordering::Relaxed) {
                        let silent = heard.lock().unwrap_or_else(PoisonError::into_inner).elapsed();
                        let timeout = worker
                            .options
                            .scheduler_timeout
                            .max(2 * worker.options.heartbeat_interval);
                        if silent > timeout {
                            eprintln!(
                                "dask-rs worker {}: the scheduler at {} has not answered for \
                                 {:.1} s (scheduler timeout {:?}): taking it for hung; stopping",
                                worker.data_addr,
                                worker.scheduler,
                                silent.as_secs_f64(),
                                timeout
                            );
                            break;
                        }
                        let beat = ToScheduler::Heartbeat { metrics: worker.metrics() };
                        if let Ok(m) = messages::message("heartbeat", &beat) {
                            let _ = tx.send(m);
                        }
                    }
                    continue;
                }
                _ = monitor.tick() => {
                    if !worker.check_memory() {
                        break;
                    }
                    continue;
                }
            };
            // Reap every attempt that ended (aborted ones included), and
            // forget its entry unless a newer attempt of the key replaced it.
            while let Some(ended) = running.try_join_next_with_id() {
                if let Ok((id, key)) = ended {
                    if running_keys.get(&key).is_some_and(|r| r.abort.id() == id) {
                        running_keys.remove(&key);
                    }
                }
            }
            match messages::header::<ToWorker>("worker", &m) {
                Ok(ToWorker::Compute {
                    key,
                    run_id,
                    priority,
                    run_spec,
                    who_has,
                    report_value,
                }) => {
                    if let Some(r) = running_keys.get(&key) {
                        // Already running it: its report answers this attempt.
                        r.run_id.store(run_id, Ordering::Release);
                        continue;
                    }
                    let phase = Arc::new(AtomicU8::new(PENDING));
                    let run_id = Arc::new(AtomicU64::new(run_id));
                    let task = run_task(
                        key.clone(),
                        run_spec,
                        who_has,
                        worker.clone(),
                        Attempt {
                            phase: phase.clone(),
                            run_id: run_id.clone(),
                            queued: Queued::new(&worker, priority),
                            report_value,
                        },
                        tx.clone(),
                    );
                    let abort = running.spawn(task);
                    running_keys.insert(
                        key,
                        Running {
                            abort,
                            phase,
                            run_id,
                        },
                    );
                }
                Ok(ToWorker::Free { keys }) => {
                    for k in keys {
                        // A task the scheduler no longer wants here: stop it, so it
                        // neither stores nor reports a result.
                        // Flag first, then remove: a result finishing meanwhile on
                        // a task thread is either removed here or never stored.
                        if let Some(r) = running_keys.remove(&k) {
                            r.phase.store(CANCELLED, Ordering::Release);
                            r.abort.abort();
                        }
                        worker.store.remove(&k);
                    }
                }
                Ok(ToWorker::HeartbeatAck) => {} // heard: stamped by the reader
                Ok(ToWorker::Steal { key }) => {
                    let stolen = running_keys.get(&key).is_some_and(|r| {
                        r.phase
                            .compare_exchange(PENDING, STOLEN, Ordering::AcqRel, Ordering::Acquire)
                            .is_ok()
                    });
                    if stolen {
                        if let Some(r) = running_keys.remove(&key) {
                            r.abort.abort();
                        }
                        worker.stolen.fetch_add(1, Ordering::Relaxed);
                    }
                    let reply = ToScheduler::StealResponse { key, stolen };
                    if let Ok(m) = messages::message("steal-response", &reply) {
                        let _ = tx.send(m);
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
        shared,
    })
}

/// Aborts a spawned task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How a task attempt ended.
enum Outcome {
    /// Its size, timing and (if asked and small) encoded value.
    Finished(u64, TaskTiming, Option<(&'static str, Vec<u8>)>),
    Failed(Error),
    /// The task ran and failed.
    Erred(Error, TaskTiming),
    /// A dependency could not be fetched from any holder.
    Missing {
        dependency: Key,
        errant: Vec<String>,
    },
    /// Stolen before it started, or freed by the scheduler: nothing to report.
    Dropped,
}

/// Decrements a counter when dropped (also when the task is aborted).
struct Gauge<'a>(&'a AtomicU64);

impl<'a> Gauge<'a> {
    fn up(counter: &'a AtomicU64) -> Gauge<'a> {
        counter.fetch_add(1, Ordering::Relaxed);
        Gauge(counter)
    }
}

impl Drop for Gauge<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a task attempt shares with the worker's main loop.
struct Attempt {
    phase: Arc<AtomicU8>,
    run_id: Arc<AtomicU64>,
    queued: Queued,
    /// A client waits for the value (see [`ToWorker::Compute`]).
    report_value: bool,
}

async fn run_task(
    key: Key,
    run_spec: Vec<u8>,
    who_has: Vec<(Key, Vec<String>)>,
    worker: Arc<Shared>,
    attempt: Attempt,
    tx: UnboundedSender<Message>,
) -> Key {
    let Attempt {
        phase,
        run_id,
        queued,
        report_value,
    } = attempt;
    let (outcome, in_process) = match decode(&key, &run_spec) {
        Ok((task, in_process)) => {
            // A client in this process reads the value from memory.
            let inline = report_value && !in_process;
            let outcome = execute(&key, task, who_has, &worker, (&phase, &queued), inline, &tx);
            (outcome.await, in_process)
        }
        Err(e) => (Outcome::Failed(e), false),
    };
    let (outcome, timing) = match outcome {
        Outcome::Erred(e, timing) => (Outcome::Failed(e), Some(timing)),
        other => (other, None),
    };
    let run_id = run_id.load(Ordering::Acquire);
    let mut frames = Vec::new();
    let reply = match outcome {
        Outcome::Dropped | Outcome::Erred(..) => return key,
        Outcome::Finished(nbytes, timing, inline) => {
            let (value, frame) = inline
                .map(|(tag, bytes)| (tag.to_string(), Bytes::from(bytes)))
                .unzip();
            frames.extend(frame);
            ToScheduler::TaskFinished {
                key: key.clone(),
                run_id,
                nbytes,
                timing,
                value,
            }
        }
        Outcome::Missing { dependency, errant } => ToScheduler::MissingData {
            key: key.clone(),
            run_id,
            dependency,
            errant,
        },
        Outcome::Failed(Error::Core(error @ dask_core::Error::TaskFailed { .. })) => {
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
                run_id,
                op: op.clone(),
                message: message.clone(),
                timing,
            };
            if in_process {
                local::put_error(failed.clone(), error);
            }
            reply
        }
        Outcome::Failed(other) => ToScheduler::TaskErred {
            key: key.clone(),
            run_id,
            op: "worker".into(),
            message: other.to_string(),
            timing,
        },
    };
    if let Ok(m) = messages::message_with("task-done", &reply, frames) {
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

/// Ends a task attempt's hold on its thread when dropped (also when the
/// attempt is aborted).
struct EndSlot(Arc<crate::worker_client::TaskSlot>);

impl Drop for EndSlot {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// A task ready to start, run on a task thread with a permit of the
/// worker's `nthreads` semaphore; gives the permit back if the attempt still
/// holds it when done (not seceded, not aborted), for the next task.
type StartFn = Box<dyn FnOnce(OwnedSemaphorePermit) -> Option<OwnedSemaphorePermit> + Send>;

/// A task waiting for a thread, in the worker's hand-over queue: started by
/// whichever comes first, its own attempt once it gets a permit, or a task
/// thread that just finished a task and passes its permit on (so a worker
/// running a stream of tasks starts the next one on the same thread, with
/// no wake-up of another thread per task).
/// Its place is taken when the `Compute` arrives, in message order, so a
/// batch of tasks starts in the scheduler's order even while the attempts of
/// later ones are still being set up.
#[derive(Default)]
struct Waiting {
    start: Mutex<Start>,
}

#[derive(Default)]
enum Start {
    /// Its attempt is setting up (decoding, reading the table): ready in a
    /// moment, so tasks after it wait for it.
    #[default]
    Preparing,
    /// Its attempt fetches inputs from peers: tasks after it go first.
    Fetching,
    Ready(StartFn),
    /// Started, or dropped with its attempt.
    Taken,
}

impl Waiting {
    fn lock(&self) -> std::sync::MutexGuard<'_, Start> {
        self.start.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Its inputs come from peers: tasks after it need not wait for it.
    fn fetching(&self) {
        let mut state = self.lock();
        if matches!(*state, Start::Preparing) {
            *state = Start::Fetching;
        }
    }

    /// Its inputs are ready: it may start.
    fn ready(&self, start: StartFn) {
        let mut state = self.lock();
        if matches!(*state, Start::Preparing | Start::Fetching) {
            *state = Start::Ready(start);
        }
    }

    /// Whether the task was taken to start (or dropped).
    fn is_started(&self) -> bool {
        matches!(*self.lock(), Start::Taken)
    }

    /// Drops it: it will not start.
    fn drop_task(&self) {
        *self.lock() = Start::Taken;
    }
}

/// Tasks waiting for a thread, by the scheduler's priority, then arrival.
#[derive(Default)]
struct HandOver {
    queue: Mutex<HandOverQueue>,
}

#[derive(Default)]
struct HandOverQueue {
    tasks: BTreeMap<(Priority, u64), Arc<Waiting>>,
    arrivals: u64,
}

impl HandOver {
    /// Queues `task`; the returned place removes it again.
    fn push(&self, priority: Priority, task: Arc<Waiting>) -> (Priority, u64) {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        queue.arrivals += 1;
        let place = (priority, queue.arrivals);
        queue.tasks.insert(place, task);
        place
    }

    /// The first ready task (lowest priority value) not started yet,
    /// passing tasks that fetch inputs (they keep their places). None if a
    /// task before it is still setting up: its own attempt starts it (or the
    /// first ready one) as soon as it is set up, so the order holds.
    fn next(&self) -> Option<StartFn> {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let mut done = Vec::new();
        let mut found = None;
        for (place, task) in &queue.tasks {
            let mut state = task.lock();
            match std::mem::replace(&mut *state, Start::Taken) {
                Start::Taken => done.push(*place),
                Start::Ready(start) => {
                    done.push(*place);
                    found = Some(start);
                    break;
                }
                Start::Fetching => *state = Start::Fetching,
                Start::Preparing => {
                    *state = Start::Preparing;
                    break;
                }
            }
        }
        for place in done {
            queue.tasks.remove(&place);
        }
        found
    }

    /// Whether `task` is the only task waiting for a thread.
    fn is_alone(&self, task: &Waiting) -> bool {
        let queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        queue.tasks.len() == 1
            && queue
                .tasks
                .values()
                .next()
                .is_some_and(|t| std::ptr::eq(Arc::as_ptr(t), task))
    }

    fn remove(&self, place: &(Priority, u64)) {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .tasks
            .remove(place);
    }
}

/// An attempt's place in the hand-over queue. Removes its task when the
/// attempt ends (also when it is aborted: a freed or stolen task must not
/// start later).
struct Queued {
    worker: Arc<Shared>,
    waiting: Arc<Waiting>,
    place: (Priority, u64),
}

impl Queued {
    /// Takes a place for a task that just arrived.
    fn new(worker: &Arc<Shared>, priority: Priority) -> Queued {
        let waiting = Arc::new(Waiting::default());
        let place = worker.handover.push(priority, waiting.clone());
        Queued {
            worker: worker.clone(),
            waiting,
            place,
        }
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.waiting.drop_task();
        self.worker.handover.remove(&self.place);
    }
}

/// Counts a task as ready until it starts or its attempt ends, once.
struct ReadyMark {
    shared: Arc<Shared>,
    counted: AtomicBool,
}

impl ReadyMark {
    fn new(shared: &Arc<Shared>) -> Arc<ReadyMark> {
        shared.ready.fetch_add(1, Ordering::Relaxed);
        Arc::new(ReadyMark {
            shared: shared.clone(),
            counted: AtomicBool::new(true),
        })
    }

    fn done(&self) {
        if self.counted.swap(false, Ordering::AcqRel) {
            self.shared.ready.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Drop for ReadyMark {
    fn drop(&mut self) {
        self.done();
    }
}

/// Runs `start` with `permit` on this task thread, then, while the permit
/// comes back and the worker has room, the tasks waiting for a thread.
fn run_chain(shared: &Shared, start: StartFn, permit: OwnedSemaphorePermit) {
    let mut next = start(permit);
    while let Some(permit) = next {
        if shared.paused.load(Ordering::Relaxed) || !shared.room_to_start() {
            return; // the permit goes back; waiting attempts check memory
        }
        let Some(start) = shared.handover.next() else {
            return;
        };
        next = start(permit);
    }
}

/// [`run_chain`] on a task thread of the blocking pool, detached: each
/// task's outcome comes through its attempt's `done` channel.
fn spawn_chain(worker: &Arc<Shared>, start: StartFn, permit: OwnedSemaphorePermit) {
    let shared = worker.clone();
    drop(tokio::task::spawn_blocking(move || {
        run_chain(&shared, start, permit)
    }));
}

async fn execute(
    key: &Key,
    task: Arc<dask_core::Task>,
    who_has: Vec<(Key, Vec<String>)>,
    worker: &Arc<Shared>,
    (phase, queued): (&Arc<AtomicU8>, &Queued),
    inline: bool,
    tx: &UnboundedSender<Message>,
) -> Outcome {
    let ready = ReadyMark::new(worker);
    // Remote inputs now; local ones (maybe spilled) on the task thread.
    let mut inputs: HashMap<Key, Value> = HashMap::new();
    let mut local_deps = Vec::new();
    if who_has.iter().any(|(dep, _)| !worker.store.contains(dep)) {
        queued.waiting.fetching();
    }
    for (dep, addrs) in who_has {
        if worker.store.contains(&dep) {
            local_deps.push(dep);
            continue;
        }
        match fetch(&worker.peers, &dep, &addrs).await {
            Some(v) => {
                inputs.insert(dep, v);
            }
            None => {
                return Outcome::Missing {
                    dependency: dep,
                    errant: addrs,
                }
            }
        }
    }
    // The thread is held by the attempt from its start until it ends (or is
    // aborted), or until the task secedes (`worker_client::secede`).
    let slot = crate::worker_client::TaskSlot::waiting(
        key.clone(),
        worker.slots.clone(),
        tx.clone(),
        tokio::runtime::Handle::current(),
    );
    let _slot = EndSlot(slot.clone());
    let (done_tx, mut done) = tokio::sync::oneshot::channel::<Outcome>();
    let start: StartFn = {
        let key = key.clone();
        let shared = worker.clone();
        let phase = phase.clone();
        let ready = ready.clone();
        Box::new(move |permit| {
            if let Err(permit) = slot.hold(permit) {
                let _ = done_tx.send(Outcome::Dropped); // aborted meanwhile
                return Some(permit);
            }
            if phase
                .compare_exchange(PENDING, STARTED, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                let _ = done_tx.send(Outcome::Dropped); // stolen or freed
                return slot.finish();
            }
            ready.done();
            drop(ready);
            let executing = Gauge::up(&shared.executing);
            let run = Run { key, task, inline };
            let outcome = run_here(&shared, run, inputs, local_deps, &slot, &phase);
            drop(executing);
            let permit = slot.finish();
            let _ = done_tx.send(outcome);
            permit
        })
    };
    let waiting = &queued.waiting;
    waiting.ready(start);
    start_on_this_thread(worker, waiting);
    // Memory is looked at again right before the task starts (the monitor
    // looks only now and then): a worker at its pause threshold spills or
    // pauses first, so with one thread managed memory ends at most one
    // task's output above the threshold (with n threads, n outputs). A task
    // thread passing its permit on checks the same.
    loop {
        if waiting.is_started() {
            break;
        }
        while worker.paused.load(Ordering::Relaxed) {
            tokio::select! {
                biased;
                outcome = &mut done => return outcome.unwrap_or_else(|_| thread_failed()),
                () = tokio::time::sleep(MEMORY_MONITOR_INTERVAL) => {}
            }
        }
        let permit = tokio::select! {
            biased;
            outcome = &mut done => return outcome.unwrap_or_else(|_| thread_failed()),
            permit = worker.slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return Outcome::Failed(Error::Closed),
            },
        };
        if !worker.room_to_start() {
            continue;
        }
        // The permit starts the first waiting task, not necessarily this
        // one: attempts get permits in the order tokio polls them, tasks
        // start in the scheduler's order. This attempt's own task is then
        // started by a later permit or a task thread passing its permit on.
        if let Some(start) = worker.handover.next() {
            spawn_chain(worker, start, permit);
        }
        // Else a task thread started it meanwhile; this permit goes back.
        if waiting.is_started() {
            break;
        }
    }
    done.await.unwrap_or_else(|_| thread_failed())
}

/// Starts the first waiting task on the thread that received it, if a task
/// thread is free right now and `waiting` is the only task waiting; no
/// thread is woken. A task arriving at an idle worker then starts and
/// reports without two hand-overs between threads (the runtime's thread to
/// a task thread and back), which on a VM whose idle CPUs halt cost tens of
/// µs each.
///
/// The task runs in [`tokio::task::block_in_place`], so it may block or run
/// long like on any task thread: the runtime moves its other work to another
/// thread meanwhile. Not on a current-thread runtime, which cannot do that.
fn start_on_this_thread(worker: &Arc<Shared>, waiting: &Waiting) {
    let flavor = tokio::runtime::Handle::current().runtime_flavor();
    if flavor != tokio::runtime::RuntimeFlavor::MultiThread
        || worker.paused.load(Ordering::Relaxed)
        || !worker.handover.is_alone(waiting)
    {
        return;
    }
    let Ok(permit) = worker.slots.clone().try_acquire_owned() else {
        return;
    };
    if !worker.room_to_start() {
        return;
    }
    let Some(start) = worker.handover.next() else {
        return;
    };
    worker.started_inline.fetch_add(1, Ordering::Relaxed);
    let permit = tokio::task::block_in_place(|| start(permit));
    // Tasks that came meanwhile go on a task thread as usual.
    if let Some(permit) = permit {
        if let Some(next) = worker.handover.next() {
            spawn_chain(worker, next, permit);
        }
    }
}

/// The outcome of an attempt whose task thread ended without one (a bug).
fn thread_failed() -> Outcome {
    Outcome::Failed(Error::Malformed {
        what: "task",
        detail: "the task thread ended without reporting the task's outcome".into(),
    })
}

/// The largest result a worker sends with its report (when a client waits
/// for it): beyond it, the client fetches the value from the worker.
pub(crate) const INLINE_RESULT_LIMIT: u64 = 64 * 1024;

/// `value` (of `nbytes`) encoded for its report, if it is small enough and
/// has a codec.
fn small_encoding(value: &Value, nbytes: u64) -> Option<(&'static str, Vec<u8>)> {
    if nbytes > INLINE_RESULT_LIMIT || !codec::has_codec(value) {
        return None;
    }
    codec::encode_value(value)
        .ok()
        .filter(|(_, bytes)| bytes.len() as u64 <= INLINE_RESULT_LIMIT)
}

/// A task to run on a task thread.
struct Run {
    key: Key,
    task: Arc<dask_core::Task>,
    /// Encode a small result for the report (see [`INLINE_RESULT_LIMIT`]).
    inline: bool,
}

/// Runs a started task on this task thread: its local inputs, then the task,
/// then its result into the store (and, if asked, a small result encoded for
/// the report).
fn run_here(
    shared: &Arc<Shared>,
    Run { key, task, inline }: Run,
    mut inputs: HashMap<Key, Value>,
    local_deps: Vec<Key>,
    slot: &Arc<crate::worker_client::TaskSlot>,
    phase: &AtomicU8,
) -> Outcome {
    for dep in local_deps {
        match shared.store.get(&dep) {
            Ok(Some(v)) => {
                inputs.insert(dep, v);
            }
            Ok(None) => {
                return Outcome::Missing {
                    dependency: dep,
                    errant: vec![shared.data_addr.clone()],
                }
            }
            Err(e) => return Outcome::Failed(e),
        }
    }
    shared.executed.fetch_add(1, Ordering::Relaxed);
    let lane = shared.lanes.take();
    let start = task_stream::now();
    let security = &shared.options.security;
    let result = crate::worker_client::in_task(&shared.scheduler, security, slot.clone(), || {
        task.execute(&key, |k| inputs[k].clone())
    });
    let timing = TaskTiming {
        start,
        stop: task_stream::now(),
        thread: lane.number,
    };
    drop(lane);
    match result {
        Ok(value) => {
            let nbytes = shared.sizeof(&value);
            let encoded = inline.then(|| small_encoding(&value, nbytes)).flatten();
            // Aborting the task does not stop this thread: a task freed
            // meanwhile must not leave its value behind.
            let cancelled = || phase.load(Ordering::Acquire) == CANCELLED;
            if shared.store.insert_unless(key, value, nbytes, cancelled) {
                Outcome::Finished(nbytes, timing, encoded)
            } else {
                Outcome::Dropped
            }
        }
        Err(e) => Outcome::Erred(e.into(), timing),
    }
}

/// Fetches `key` from the first holder that has it (in this process first);
/// `None` when none does.
async fn fetch(peers: &PeerPool, key: &Key, addrs: &[String]) -> Option<Value> {
    if let Some(v) = addrs.iter().find_map(|a| local::read(a, key)) {
        return Some(v);
    }
    for addr in addrs {
        if let Ok(mut values) = peers.fetch(addr, std::slice::from_ref(key)).await {
            if let Some(v) = values.pop() {
                return Some(v);
            }
        }
    }
    None
}

/// Idle connections to data ports, reused across fetches (a connection and
/// its handshake per dependency would dominate small tasks). One pool per
/// runtime: a worker's, a client's.
pub struct PeerPool {
    role: Role,
    security: crate::Security,
    idle: Mutex<HashMap<String, Vec<Connection>>>,
}

/// Idle connections kept per peer.
const MAX_IDLE_PER_PEER: usize = 4;

impl PeerPool {
    /// An empty pool whose connections handshake as `role`, without token
    /// or TLS.
    pub fn new(role: Role) -> PeerPool {
        PeerPool::with_security(role, crate::Security::default())
    }

    /// The token and TLS this pool's connections present.
    pub(crate) fn security(&self) -> &crate::Security {
        &self.security
    }

    /// An empty pool whose connections handshake as `role` with `security`.
    pub fn with_security(role: Role, security: crate::Security) -> PeerPool {
        PeerPool {
            role,
            security,
            idle: Mutex::new(HashMap::new()),
        }
    }

    /// Fetches `keys` from the data port at `addr`, reusing an idle connection
    /// when there is one (and a fresh one if that turns out to be dead).
    pub async fn fetch(&self, addr: &str, keys: &[Key]) -> Result<Vec<Value>> {
        let request = PeerRequest::GetData {
            keys: keys.to_vec(),
        };
        let mut place = PlaceParts::default();
        let reply = self
            .exchange_placed(
                addr,
                messages::message("get-data", &request)?,
                &mut |h, f, n| place.place(h, f, n),
            )
            .await?;
        decode_reply(addr, keys, reply)
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
        let mut plain = |_: &[u8], _: &[Bytes], _: u64| None;
        Ok(self
            .exchange_placed(addr, request, &mut plain)
            .await?
            .message)
    }

    /// [`exchange`](Self::exchange), the reply's data frames read where
    /// `place` says.
    async fn exchange_placed(
        &self,
        addr: &str,
        request: Message,
        place: &mut protocol::Placer<'_>,
    ) -> Result<protocol::Placed> {
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(addr)
            .and_then(Vec::pop);
        if let Some(conn) = pooled {
            match self.request(conn, addr, &request, place).await {
                Err(Error::Io(_) | Error::Closed | Error::Truncated { .. }) => {} // stale: reconnect
                other => return other,
            }
        }
        let conn =
            protocol::connect_with(addr, self.role, Limits::default(), &self.security).await?;
        self.request(conn, addr, &request, place).await
    }

    async fn request(
        &self,
        mut conn: Connection,
        addr: &str,
        request: &Message,
        place: &mut protocol::Placer<'_>,
    ) -> Result<protocol::Placed> {
        conn.send(request).await?;
        let reply = conn.recv_placed(place).await?;
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

/// Places the data parts of a [`PeerReply::Parts`] in their values' own
/// buffers as they arrive (`dask_core::codec::data_sink`); everything else
/// goes to plain frames.
#[derive(Default)]
struct PlaceParts {
    /// The codec tags of the reply's values, once its header is read (None:
    /// not a `Parts` reply).
    tags: Option<Option<Vec<String>>>,
}

impl PlaceParts {
    fn place(
        &mut self,
        header: &[u8],
        frames: &[Bytes],
        len: u64,
    ) -> Option<Box<dyn codec::DataSink>> {
        let tags =
            self.tags
                .get_or_insert_with(|| match protocol::decode::<PeerReply>("data", header) {
                    Ok(PeerReply::Parts { values }) => {
                        Some(values.into_iter().map(|(_, t)| t).collect())
                    }
                    _ => None,
                });
        let i = frames.len();
        if i.is_multiple_of(2) {
            return None; // a meta part
        }
        let tag = tags.as_ref()?.get(i / 2)?;
        // A bad meta part or length is left to `decode_parts` on plain
        // frames, which reports it as a codec error.
        codec::data_sink(tag, &frames[i - 1], usize::try_from(len).ok()?)
            .ok()
            .flatten()
    }
}

fn decode_reply(addr: &str, keys: &[Key], reply: protocol::Placed) -> Result<Vec<Value>> {
    let protocol::Placed {
        message: reply,
        mut sinks,
    } = reply;
    let count_error = |values: usize, per_value: usize| Error::Malformed {
        what: "data",
        detail: format!(
            "{values} values in {per_value} frames each for {} frames and {} keys",
            reply.frames.len(),
            keys.len()
        ),
    };
    match messages::header::<PeerReply>("data", &reply)? {
        PeerReply::Parts { values } => {
            if Some(reply.frames.len()) != values.len().checked_mul(2) || values.len() != keys.len()
            {
                return Err(count_error(values.len(), 2));
            }
            values
                .iter()
                .enumerate()
                .map(|(i, (_, tag))| {
                    Ok(match sinks[2 * i + 1].take() {
                        Some(sink) => codec::finish_sink(tag, sink)?,
                        None => codec::decode_parts(
                            tag,
                            &reply.frames[2 * i],
                            &reply.frames[2 * i + 1],
                        )?,
                    })
                })
                .collect()
        }
        PeerReply::Data { values } => {
            if values.len() != reply.frames.len() || values.len() != keys.len() {
                return Err(count_error(values.len(), 1));
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
        other @ (PeerReply::Stored | PeerReply::ActorFailed { .. }) => Err(Error::Malformed {
            what: "data",
            detail: format!("the worker at {addr} answered a fetch with {other:?}"),
        }),
    }
}

async fn serve_data(
    listener: TcpListener,
    memory: Memory,
    security: crate::Security,
    data_addr: String,
) {
    // Connections live in this set: stopping the server (kill) closes them too.
    let mut connections = JoinSet::new();
    let who: Arc<str> = format!("worker {data_addr}").into();
    while let Ok((stream, _)) = listener.accept().await {
        while connections.try_join_next().is_some() {}
        let memory = memory.clone();
        let security = security.clone();
        let who = who.clone();
        connections.spawn(async move {
            let conn =
                match protocol::accept_with(stream, Role::Worker, Limits::default(), &security)
                    .await
                {
                    Ok(conn) => conn,
                    Err(e) => {
                        crate::scheduler::server::log_refusal(&who, &e);
                        return;
                    }
                };
            serve_peer(conn, memory).await;
        });
    }
}

/// Requests read from a peer connection but not answered yet, at most.
const PEER_BACKLOG: usize = 1024;

/// Answers one peer connection's requests, in order. Requests that arrived
/// together are answered together: a run of actor calls goes to one
/// blocking thread (a method may take its time; the calls run one after the
/// other, so one caller's calls run in the order it sent them), and the
/// replies of a batch leave with one flush. A pipelining caller so pays one
/// thread hand-off and one write per batch, not per call.
async fn serve_peer(conn: Connection, memory: Memory) {
    let (mut reader, mut writer) = conn.split();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Message>(PEER_BACKLOG);
    let read = async move {
        while let Ok(m) = reader.recv().await {
            if tx.send(m).await.is_err() {
                break;
            }
        }
    };
    let serve = async move {
        let mut batch = Vec::new();
        while rx.recv_many(&mut batch, PEER_BACKLOG).await > 0 {
            let mut replies = Vec::with_capacity(batch.len());
            let mut calls = Vec::new();
            let mut malformed = false;
            for m in batch.drain(..) {
                // Answered in request order: the calls before a fetch first.
                match messages::header("peer-request", &m) {
                    Ok(PeerRequest::ActorCall { key, task }) => calls.push((key, task, m.frames)),
                    Ok(PeerRequest::GetData { keys }) => {
                        run_actor_calls(&mut calls, &memory, &mut replies).await;
                        replies.push(data_reply(&keys, &memory));
                    }
                    Ok(PeerRequest::PutData { values }) => {
                        run_actor_calls(&mut calls, &memory, &mut replies).await;
                        replies.push(put_reply(&values, &m.frames, &memory));
                    }
                    Err(_) => {
                        malformed = true;
                        break;
                    }
                }
            }
            run_actor_calls(&mut calls, &memory, &mut replies).await;
            if writer.send_batch(&replies).await.is_err() || malformed {
                return; // the reader ends with the connection
            }
        }
    };
    tokio::join!(read, serve);
}

/// Runs `calls` (in order, on one blocking thread) and appends their replies.
async fn run_actor_calls(
    calls: &mut Vec<(Key, protocol::WireTask, Vec<Bytes>)>,
    memory: &Memory,
    replies: &mut Vec<Message>,
) {
    if calls.is_empty() {
        return;
    }
    let calls = std::mem::take(calls);
    let n = calls.len();
    let memory = memory.clone();
    let answered = tokio::task::spawn_blocking(move || {
        calls
            .iter()
            .map(|(key, task, frames)| crate::actor::serve_call(key, task, frames, &memory))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_else(|_| vec![Message::default(); n]);
    replies.extend(answered);
}

/// Decodes and stores scattered values: all or none.
fn put_reply(values: &[(Key, String)], frames: &[Bytes], memory: &Memory) -> Message {
    let decoded: std::result::Result<Vec<(Value, u64)>, String> = if values.len() != frames.len() {
        Err(format!(
            "{} values for {} frames",
            values.len(),
            frames.len()
        ))
    } else {
        values
            .iter()
            .zip(frames)
            .map(|((_, tag), b)| {
                codec::decode_value(tag, b)
                    .map(|v| (v, b.len() as u64))
                    .map_err(|e| e.to_string())
            })
            .collect()
    };
    let reply = match decoded {
        Ok(decoded) => {
            for ((k, _), (v, nbytes)) in values.iter().zip(decoded) {
                memory.insert(k.clone(), v, nbytes);
            }
            PeerReply::Stored
        }
        Err(message) => PeerReply::Failed { message },
    };
    messages::message("data", &reply).unwrap_or_default()
}

fn data_reply(keys: &[Key], memory: &Memory) -> Message {
    let mut missing = Vec::new();
    let mut values = Vec::with_capacity(keys.len());
    let mut frames = Vec::with_capacity(keys.len());
    let mut failure = None;
    for k in keys {
        match memory.get_parts(k) {
            Ok(Some((tag, parts))) => {
                values.push((k.clone(), tag));
                frames.push(Bytes::from(parts.meta));
                frames.push(parts.data);
            }
            Ok(None) => missing.push(k.clone()),
            Err(e) => failure = Some(e.to_string()),
        }
    }
    let reply = if !missing.is_empty() {
        messages::message("data", &PeerReply::Missing { keys: missing })
    } else if let Some(message) = failure {
        messages::message("data", &PeerReply::Failed { message })
    } else {
        messages::message_with("data", &PeerReply::Parts { values }, frames)
    };
    reply.unwrap_or_default()
}
