//! The scheduler's state machine: task states, transitions, placement.
//!
//! Task states use Dask's names. A task is *released* (known, not wanted or not
//! started), *waiting* (wanted, dependencies not all in memory), *no-worker*
//! (ready but no worker can run it), *queued* (a ready root task held back
//! while every worker is saturated), *processing* (sent to one worker),
//! *memory* (held by one or more workers), *erred* (failed, or a dependency
//! failed) or *forgotten* (removed). Every change goes through
//! [`SchedulerState::transition`], which logs it in the task's story; a
//! transition the table does not allow is an internal error carrying that
//! story.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

mod stealing;

use bytes::Bytes;
use dask_core::{Key, KeyMap, KeySet};

/// A worker, numbered by the scheduler.
pub type WorkerId = u64;
/// A client, numbered by the scheduler.
pub type ClientId = u64;

/// How many times a task may be running on a worker that dies before it is
/// declared erred as suspicious ("KilledWorker" in Dask).
pub const DEFAULT_ALLOWED_FAILURES: u32 = 3;

/// The op name in the [`TaskError`] of a task erred as suspicious (it was
/// running on more than `allowed_failures` workers that died; Dask's
/// `KilledWorker`). Its message is [`crate::Error::SuspiciousTask`]'s text.
pub const SUSPICIOUS_OP: &str = "killed-worker";

/// The error of a task that was running on `deaths` workers that died.
pub fn suspicious_error(key: &Key, deaths: u32, allowed: u32) -> TaskError {
    TaskError {
        key: key.clone(),
        op: SUSPICIOUS_OP.into(),
        message: crate::Error::SuspiciousTask {
            key: key.clone(),
            deaths,
            allowed,
        }
        .to_string(),
    }
}

/// The deaths and allowed failures of a suspicious task's error (made by
/// [`suspicious_error`]); `None` for any other error.
pub fn parse_suspicious(error: &TaskError) -> Option<(u32, u32)> {
    if error.op != SUSPICIOUS_OP {
        return None;
    }
    let rest = error
        .message
        .strip_prefix(&format!("{} is suspicious: ", error.key))?;
    let (deaths, rest) = rest.split_once(' ')?;
    let allowed = rest.split_once("(allowed: ")?.1.split_once(')')?.0;
    Some((deaths.parse().ok()?, allowed.parse().ok()?))
}

/// The state of one task, with Dask's names.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Status {
    /// Known, not running, not held.
    Released,
    /// Wanted; some dependencies are not in memory yet.
    Waiting,
    /// Ready, but no worker is connected.
    NoWorker,
    /// Ready root task held back while every worker is saturated.
    Queued,
    /// Sent to a worker.
    Processing,
    /// Held by at least one worker.
    Memory,
    /// Failed, or a dependency failed.
    Erred,
    /// Removed from the scheduler.
    Forgotten,
}

/// Order in which ready tasks run: lower first.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Priority {
    /// Negated user priority (a higher user priority runs first).
    pub user: i64,
    /// Graph submission number: earlier graphs first.
    pub generation: u64,
    /// Position in the graph's order (`dask_core::order`).
    pub order: u64,
}

/// One task of a graph submitted by a client.
#[derive(Debug, Clone)]
pub struct TaskSpec {
    /// The task's key.
    pub key: Key,
    /// Keys it reads.
    pub dependencies: Vec<Key>,
    /// The encoded task, passed to the worker as is.
    pub run_spec: Bytes,
    /// Priority within the submission (user priority and order).
    pub priority: Priority,
    /// How many times a failure is retried.
    pub retries: u32,
    /// Workers allowed to run it (`None`: any).
    pub restrictions: Option<BTreeSet<WorkerId>>,
}

/// A stimulus: something that happened.
#[derive(Debug, Clone)]
pub enum Event {
    /// A worker joined with `nthreads` threads.
    AddWorker {
        /// The worker.
        worker: WorkerId,
        /// Its number of task threads.
        nthreads: u32,
    },
    /// A worker left or died: its tasks and data are lost.
    RemoveWorker {
        /// The worker.
        worker: WorkerId,
    },
    /// A client submitted tasks and wants `wanted`. Invalid input (a new
    /// task reading a key neither submitted nor known, reading itself or on a
    /// cycle, two different tasks under one key, a wanted key nobody submits)
    /// is refused: each wanted key concerned is reported erred to this
    /// client, with what was wrong and how to fix it; nothing else changes.
    UpdateGraph {
        /// The client.
        client: ClientId,
        /// New tasks (tasks already known keep their state).
        tasks: Vec<TaskSpec>,
        /// Keys the client holds futures for.
        wanted: Vec<Key>,
    },
    /// A worker computed a task.
    TaskFinished {
        /// The worker.
        worker: WorkerId,
        /// The task.
        key: Key,
        /// Size of the result.
        nbytes: u64,
    },
    /// A task failed on a worker.
    TaskErred {
        /// The worker.
        worker: WorkerId,
        /// The task.
        key: Key,
        /// The failure, as the client will see it.
        error: TaskError,
    },
    /// A client put values on workers (scatter): they are in memory there.
    UpdateData {
        /// The client, which wants them.
        client: ClientId,
        /// Each key, its size, and the task that recomputes (or reports the
        /// loss of) it if every copy is lost.
        keys: Vec<(Key, u64, Bytes)>,
        /// The workers holding every key.
        workers: Vec<WorkerId>,
    },
    /// A client asks to rerun erred keys (and the erred tasks they depend on).
    Retry {
        /// The keys.
        keys: Vec<Key>,
    },
    /// A client no longer holds futures for these keys.
    ReleaseKeys {
        /// The client.
        client: ClientId,
        /// The keys.
        keys: Vec<Key>,
    },
    /// A client disconnected: everything it wanted is released.
    RemoveClient {
        /// The client.
        client: ClientId,
    },
    /// `worker` could not fetch `dependency` of `key` from `errant`, the
    /// workers it was told hold it: they do not (any more). The scheduler
    /// corrects who holds it, recomputes it if no copy is left, and sends
    /// `key` again.
    MissingData {
        /// The worker that asked.
        worker: WorkerId,
        /// The task that could not start.
        key: Key,
        /// The dependency it could not get.
        dependency: Key,
        /// Workers that did not deliver it.
        errant: Vec<WorkerId>,
    },
    /// A worker's heartbeat: whether it is paused by memory.
    Heartbeat {
        /// The worker.
        worker: WorkerId,
        /// Above its pause threshold.
        paused: bool,
    },
    /// A task running on `worker` seceded from its thread (it waits on other
    /// tasks, see `dask_distributed::secede`): it no longer counts towards
    /// the worker's saturation, so queued tasks can go there.
    LongRunning {
        /// The worker.
        worker: WorkerId,
        /// The task.
        key: Key,
    },
    /// `worker` answered an [`Action::Steal`] for `key`.
    StealResponse {
        /// The worker asked to give the task up.
        worker: WorkerId,
        /// The task.
        key: Key,
        /// True: it had not started and dropped it. False: it keeps it.
        stolen: bool,
    },
}

/// An instruction for the network layer.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Run `key` on `worker`; its dependencies are held by `who_has`.
    Compute {
        /// Where to run it.
        worker: WorkerId,
        /// The task.
        key: Key,
        /// The encoded task.
        run_spec: Bytes,
        /// Numbers this attempt (see [`SchedulerState::current_run`]).
        run_id: u64,
        /// For each dependency, the workers holding it.
        who_has: Vec<(Key, Vec<WorkerId>)>,
        /// Its priority.
        priority: Priority,
    },
    /// `worker` should drop these keys (results, or tasks no longer wanted).
    Free {
        /// The worker.
        worker: WorkerId,
        /// The keys.
        keys: Vec<Key>,
    },
    /// Ask `worker` to give `key` up if it has not started it (work
    /// stealing); it answers with [`Event::StealResponse`].
    Steal {
        /// The worker.
        worker: WorkerId,
        /// The task.
        key: Key,
    },
    /// Tell `client` that `key` reached a final state.
    Report {
        /// The client.
        client: ClientId,
        /// The key.
        key: Key,
        /// What happened.
        outcome: Outcome,
    },
}

/// What a client is told about a key it wants.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Outcome {
    /// The value is in memory on a worker.
    Memory,
    /// The task, or one it depends on, failed.
    Erred(TaskError),
}

/// Why a task erred: the task that failed (itself or a dependency), its op and
/// the failure's message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TaskError {
    /// The task whose op failed.
    pub key: Key,
    /// The op's name.
    pub op: String,
    /// The failure's message.
    pub message: String,
}

/// Everything the scheduler knows about one task.
#[derive(Debug, Clone)]
pub struct TaskState {
    /// The task's key.
    pub key: Key,
    /// Its state.
    pub status: Status,
    /// The encoded task.
    pub run_spec: Bytes,
    /// Its priority.
    pub priority: Priority,
    /// Keys it reads.
    pub dependencies: Vec<Key>,
    /// Keys that read it.
    pub dependents: KeySet,
    /// While waiting: dependencies not in memory yet.
    pub waiting_on: KeySet,
    /// While in memory: dependents that still need the value.
    pub waiters: KeySet,
    /// Workers holding the value.
    pub who_has: BTreeSet<WorkerId>,
    /// The worker running it, while processing.
    pub processing_on: Option<WorkerId>,
    /// The newest attempt sent to a worker (0: none yet).
    pub run_id: u64,
    /// Clients holding futures for it.
    pub who_wants: BTreeSet<ClientId>,
    /// Size of the value.
    pub nbytes: u64,
    /// Why it erred.
    pub error: Option<TaskError>,
    /// Retries left.
    pub retries: u32,
    /// Workers that died while running it.
    pub suspicious: u32,
    /// Workers allowed to run it.
    pub restrictions: Option<BTreeSet<WorkerId>>,
    /// Every transition, with its cause.
    pub story: Vec<(Status, Status, &'static str)>,
}

/// What the scheduler knows about a worker.
#[derive(Debug, Clone, Default)]
pub struct WorkerState {
    /// Its task threads.
    pub nthreads: u32,
    /// Tasks sent to it and not finished.
    pub processing: KeySet,
    /// Keys it holds.
    pub has_what: KeySet,
    /// Bytes it holds.
    pub nbytes: u64,
    /// Above its memory pause threshold (from its heartbeats): it starts no
    /// task, gets no new root task, and its backlog may be stolen.
    pub paused: bool,
    /// Processing tasks that seceded from their thread (a subset of
    /// `processing`): they wait on other tasks and occupy no thread.
    pub long_running: KeySet,
}

impl WorkerState {
    /// Processing tasks that occupy a thread (long-running ones do not).
    pub fn occupied(&self) -> usize {
        self.processing.len() - self.long_running.len()
    }

    /// Whether it has `per_thread` root tasks per thread (rounded up) or
    /// more; see [`SchedulerState::send_ahead`].
    fn saturated(&self, per_thread: f64) -> bool {
        self.occupied() as f64 >= (f64::from(self.nthreads) * per_thread).ceil()
    }

    /// `key` is no longer processing here.
    fn stop_processing(&mut self, key: &Key) {
        self.processing.remove(key);
        self.long_running.remove(key);
    }
}

fn unknown_error(key: &Key) -> TaskError {
    TaskError {
        key: key.clone(),
        op: "unknown".into(),
        message: "erred without a recorded cause (bug in dask-rs)".into(),
    }
}

/// An impossible transition or broken invariant: a bug, with the key's story.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scheduler invariant broken (bug in dask-rs): {message}\nstory of {key}: {story}")]
pub struct InvariantError {
    /// The task concerned.
    pub key: Key,
    /// What is wrong.
    pub message: String,
    /// The task's transitions, oldest first.
    pub story: String,
}

/// The scheduler's whole state; see the module docs.
#[derive(Debug, Default)]
pub struct SchedulerState {
    tasks: KeyMap<TaskState>,
    workers: BTreeMap<WorkerId, WorkerState>,
    /// Ready root tasks waiting for a free worker slot, by priority.
    queued: BTreeSet<(Priority, Key)>,
    /// Ready tasks with no worker to run them.
    no_worker: KeySet,
    generation: u64,
    /// The last attempt number given out (see [`Action::Compute`]).
    last_run_id: u64,
    allowed_failures: u32,
    actions: Vec<Action>,
    recommendations: VecDeque<(Key, Status, &'static str)>,
    /// Keys transitioned by the current event (checked in debug builds).
    touched: Vec<Key>,
    /// Whether idle workers steal queued tasks from busy ones.
    stealing: bool,
    /// Steal requests sent and not answered: task and the worker asked.
    steals_in_flight: KeyMap<WorkerId>,
    /// Plugins told about every transition (dashboard: scheduler/plugin.rs).
    plugins: super::plugin::Plugins,
    /// Mean run time of recent tasks (seconds) per task group, for
    /// [`SchedulerState::send_ahead`].
    group_durations: HashMap<String, f64>,
}

/// Dask's default worker saturation: root tasks sent per thread before the
/// rest wait in the scheduler's queue, for tasks of unknown or long duration.
const SATURATION: f64 = 1.1;
/// Work (seconds) a worker's queue of short root tasks may hold: enough to
/// cover the round trip from a task's report to the scheduler's next send, so
/// a worker running tasks much shorter than that round trip never idles.
const SEND_AHEAD_SECS: f64 = 0.002;
/// Upper bound on root tasks sent ahead per thread, however short.
const MAX_SEND_AHEAD: f64 = 100.0;

impl SchedulerState {
    /// An empty scheduler.
    pub fn new() -> Self {
        SchedulerState {
            allowed_failures: DEFAULT_ALLOWED_FAILURES,
            stealing: true,
            ..Default::default()
        }
    }

    /// Turns work stealing on (the default) or off.
    pub fn with_work_stealing(mut self, on: bool) -> Self {
        self.stealing = on;
        self
    }

    /// Sets how many worker deaths a task may cause before it errs as suspicious.
    pub fn with_allowed_failures(mut self, n: u32) -> Self {
        self.allowed_failures = n;
        self
    }

    /// Registers a plugin told about every transition and worker (see
    /// [`super::plugin`]).
    pub fn add_plugin(&mut self, plugin: Box<dyn super::plugin::SchedulerPlugin>) {
        self.plugins.add(plugin);
    }

    /// The registered plugins.
    pub fn plugins(&self) -> &super::plugin::Plugins {
        &self.plugins
    }

    /// Whether a worker's report on `key` comes from an older attempt than
    /// the one `worker` runs now: the report was sent before the worker read
    /// the `Free` of that attempt, and the scheduler has since sent the key to
    /// the same worker again (`run_id` of [`Action::Compute`]). Such a report
    /// must be dropped: it is not about the task as submitted now. Reports
    /// about keys running elsewhere or not at all are left to [`Self::handle`].
    pub fn is_stale_report(&self, worker: WorkerId, key: &Key, run_id: u64) -> bool {
        self.tasks.get(key).is_some_and(|t| {
            t.status == Status::Processing && t.processing_on == Some(worker) && t.run_id != run_id
        })
    }

    /// Records how long `key` ran on a worker (from its report), as a
    /// moving mean per task group (the key's name without tokens).
    pub fn record_duration(&mut self, key: &Key, seconds: f64) {
        if !seconds.is_finite() || seconds < 0.0 {
            return;
        }
        let group = crate::dashboard::model::task_group(key.name());
        match self.group_durations.get_mut(group) {
            Some(mean) => *mean = 0.8 * *mean + 0.2 * seconds,
            None => {
                self.group_durations.insert(group.to_owned(), seconds);
            }
        }
    }

    /// Root tasks per thread a worker may be sent for `key` before it counts
    /// as saturated: Dask's 1.1 while its group's duration is unknown or
    /// long; for short tasks enough to hold [`SEND_AHEAD_SECS`] of work (at
    /// most [`MAX_SEND_AHEAD`]), so no worker waits a round trip per task.
    /// The queue stays bounded in time: a more urgent task that becomes
    /// ready waits at most that long behind them, and workers start the
    /// tasks they hold in priority order.
    pub fn send_ahead(&self, key: &Key) -> f64 {
        let group = crate::dashboard::model::task_group(key.name());
        match self.group_durations.get(group) {
            Some(&mean) if mean > 0.0 => (SEND_AHEAD_SECS / mean).clamp(SATURATION, MAX_SEND_AHEAD),
            Some(_) => MAX_SEND_AHEAD,
            None => SATURATION,
        }
    }

    /// The registered plugins, to tell them what only the network layer knows.
    pub fn plugins_mut(&mut self) -> &mut super::plugin::Plugins {
        &mut self.plugins
    }

    /// The state of `key`, if known.
    pub fn task(&self, key: &Key) -> Option<&TaskState> {
        self.tasks.get(key)
    }

    /// Every known task.
    pub fn tasks(&self) -> impl Iterator<Item = &TaskState> {
        self.tasks.values()
    }

    /// Connected workers.
    pub fn workers(&self) -> &BTreeMap<WorkerId, WorkerState> {
        &self.workers
    }

    /// Handles one event; returns what the network layer must do.
    ///
    /// Messages from a worker about a task it is no longer responsible for
    /// (stale after a reschedule) are ignored, but the worker is told to free
    /// the key.
    pub fn handle(&mut self, event: Event) -> Result<Vec<Action>, InvariantError> {
        match event {
            Event::AddWorker { worker, nthreads } => self.add_worker(worker, nthreads),
            Event::RemoveWorker { worker } => self.remove_worker(worker),
            Event::UpdateGraph {
                client,
                tasks,
                wanted,
            } => self.update_graph(client, tasks, wanted),
            Event::TaskFinished {
                worker,
                key,
                nbytes,
            } => self.task_finished(worker, self.canonical(key), nbytes),
            Event::TaskErred { worker, key, error } => {
                self.task_erred(worker, self.canonical(key), error)
            }
            Event::UpdateData {
                client,
                keys,
                workers,
            } => self.update_data(client, keys, &workers),
            Event::Retry { keys } => self.retry(&keys),
            Event::ReleaseKeys { client, keys } => {
                let keys: Vec<Key> = keys.into_iter().map(|k| self.canonical(k)).collect();
                self.release_keys(client, &keys)
            }
            Event::RemoveClient { client } => {
                let keys: Vec<Key> = self
                    .tasks
                    .values()
                    .filter(|t| t.who_wants.contains(&client))
                    .map(|t| t.key.clone())
                    .collect();
                self.release_keys(client, &keys)
            }
            Event::MissingData {
                worker,
                key,
                dependency,
                errant,
            } => self.missing_data(worker, &key, &dependency, &errant),
            Event::StealResponse {
                worker,
                key,
                stolen,
            } => self.steal_response(worker, &key, stolen)?,
            Event::Heartbeat { worker, paused } => {
                if let Some(ws) = self.workers.get_mut(&worker) {
                    ws.paused = paused;
                }
            }
            Event::LongRunning { worker, key } => {
                // Only for a task still processing there (stale otherwise).
                if let Some(ws) = self.workers.get_mut(&worker) {
                    if ws.processing.contains(&key) {
                        ws.long_running.insert(key);
                    }
                }
            }
        }
        self.run_recommendations()?;
        self.fill_free_slots()?;
        self.balance();
        let touched = std::mem::take(&mut self.touched);
        if cfg!(debug_assertions) {
            // Only what this event changed: a full check per event would make
            // debug builds quadratic. Tests call `validate()` for everything.
            for key in &touched {
                if let Some(ts) = self.tasks.get(key) {
                    self.validate_task(ts)?;
                }
            }
        }
        Ok(std::mem::take(&mut self.actions))
    }

    /// The state's own copy of `key` when it knows the key, else `key`.
    ///
    /// Keys from messages are equal to the state's but separate allocations:
    /// every map lookup with them compares names (cold memory with tens of
    /// thousands of tasks), while the state's own copy compares by pointer.
    fn canonical(&self, key: Key) -> Key {
        match self.tasks.get_key_value(&key) {
            Some((own, _)) => own.clone(),
            None => key,
        }
    }

    /// Tells plugins that `key` was just created (a transition from
    /// forgotten; a scattered value's worker is where it was scattered).
    fn tell_created(&mut self, key: &Key, why: &'static str) {
        if self.plugins.is_empty() {
            return;
        }
        let ts = &self.tasks[key];
        let holder = ts.who_has.first().copied();
        self.plugins
            .task_transition(key, Status::Forgotten, holder, None, Some(ts), why);
    }

    fn recommend(&mut self, key: &Key, to: Status, why: &'static str) {
        self.recommendations.push_back((key.clone(), to, why));
    }

    fn run_recommendations(&mut self) -> Result<(), InvariantError> {
        while let Some((key, to, why)) = self.recommendations.pop_front() {
            self.transition(&key, to, why)?;
        }
        Ok(())
    }

    // ---- events ----

    fn add_worker(&mut self, worker: WorkerId, nthreads: u32) {
        if self.workers.contains_key(&worker) {
            // Ids are never reused: a second join of the same id is stale
            // and must not wipe what the scheduler knows the worker holds.
            return;
        }
        self.plugins.add_worker(worker, nthreads); // scheduler plugins
        self.workers.insert(
            worker,
            WorkerState {
                nthreads: nthreads.max(1),
                ..Default::default()
            },
        );
        let stuck: Vec<Key> = self.no_worker.iter().cloned().collect();
        for key in stuck {
            self.recommend(&key, Status::Waiting, "worker joined");
        }
    }

    fn remove_worker(&mut self, worker: WorkerId) {
        let Some(ws) = self.workers.remove(&worker) else {
            return;
        };
        self.steals_in_flight.retain(|_, victim| *victim != worker);
        self.plugins.remove_worker(worker); // scheduler plugins
        for key in ws.processing {
            let allowed = self.allowed_failures;
            if let Some(ts) = self.tasks.get_mut(&key) {
                ts.suspicious += 1;
                if ts.suspicious > allowed {
                    ts.error = Some(suspicious_error(&key, ts.suspicious, allowed));
                    self.recommend(&key, Status::Erred, "killed too many workers");
                } else {
                    self.recommend(&key, Status::Released, "worker died while processing");
                }
            }
        }
        for key in ws.has_what {
            if let Some(ts) = self.tasks.get_mut(&key) {
                ts.who_has.remove(&worker);
                if ts.who_has.is_empty() && ts.status == Status::Memory {
                    self.recommend(&key, Status::Released, "only copy lost with its worker");
                }
            }
        }
    }

    /// Checks a client's submission before it touches any state: a new task
    /// whose dependency is neither submitted with it nor known, a
    /// self-dependency, a dependency cycle, a key submitted twice with
    /// different contents, and a new task reading any of those is refused.
    /// Returns the refused keys with their errors (the task that was wrong, and
    /// how to fix it) and the specs to accept, first of each key.
    fn check_submission(&self, specs: Vec<TaskSpec>) -> (KeyMap<TaskError>, Vec<TaskSpec>) {
        let refuse = |key: &Key, message: String| TaskError {
            key: key.clone(),
            op: "update-graph".into(),
            message,
        };
        let mut refused: KeyMap<TaskError> = KeyMap::default();
        let mut index: KeyMap<usize> = KeyMap::default();
        let mut new_specs: Vec<TaskSpec> = Vec::with_capacity(specs.len());
        for spec in specs {
            if let Some(&i) = index.get(&spec.key) {
                let first: &TaskSpec = &new_specs[i];
                if first.dependencies != spec.dependencies || first.run_spec != spec.run_spec {
                    let message = format!(
                        "the submission holds two different tasks for the key {}; give each \
                         task its own key (keys are names of the work: equal keys, equal tasks)",
                        spec.key
                    );
                    refused.insert(spec.key.clone(), refuse(&spec.key, message));
                }
                continue;
            }
            index.insert(spec.key.clone(), new_specs.len());
            new_specs.push(spec);
        }
        // Only new tasks are checked: known ones keep their state and links.
        let is_new = |k: &Key| index.contains_key(k) && !self.tasks.contains_key(k);
        for spec in &new_specs {
            if !is_new(&spec.key) || refused.contains_key(&spec.key) {
                continue;
            }
            let key = &spec.key;
            let message = if spec.dependencies.contains(key) {
                Some(format!(
                    "task {key} depends on itself; a task may only read keys of other tasks"
                ))
            } else {
                spec.dependencies
                    .iter()
                    .find(|d| !index.contains_key(*d) && !self.tasks.contains_key(*d))
                    .map(|d| {
                        format!(
                            "task {key} depends on {d}, which is neither in this submission \
                             nor known to the scheduler (released or never submitted); submit \
                             the task computing {d} in the same graph, or keep a future for it"
                        )
                    })
            };
            if let Some(message) = message {
                refused.insert(key.clone(), refuse(key, message));
            }
        }
        // Kahn's algorithm over the new tasks: what never becomes ready is on
        // a cycle or reads one; refusals spread to dependents in the same pass.
        let mut pending: KeyMap<usize> = KeyMap::default();
        let mut dependents: KeyMap<Vec<Key>> = KeyMap::default();
        let mut ready: Vec<Key> = Vec::new();
        for spec in new_specs.iter().filter(|s| is_new(&s.key)) {
            let deps: BTreeSet<&Key> = spec
                .dependencies
                .iter()
                .filter(|d| is_new(d) && **d != spec.key)
                .collect();
            for d in &deps {
                dependents
                    .entry((*d).clone())
                    .or_default()
                    .push(spec.key.clone());
            }
            if deps.is_empty() {
                ready.push(spec.key.clone());
            }
            pending.insert(spec.key.clone(), deps.len());
        }
        while let Some(key) = ready.pop() {
            pending.remove(&key);
            let cause = refused.get(&key).cloned();
            for d in dependents.remove(&key).unwrap_or_default() {
                if let Some(cause) = &cause {
                    refused.entry(d.clone()).or_insert_with(|| cause.clone());
                }
                let left = pending.get_mut(&d).expect("a new task");
                *left -= 1;
                if *left == 0 {
                    ready.push(d);
                }
            }
        }
        if !pending.is_empty() {
            let mut on_cycle: Vec<&Key> = pending.keys().collect();
            on_cycle.sort();
            let shown: Vec<String> = on_cycle.iter().take(5).map(|k| k.to_string()).collect();
            let message = format!(
                "the submission's dependencies form a cycle among (or leading to) {}{}; \
                 a graph must be acyclic: no task may read, directly or not, its own result",
                shown.join(", "),
                if on_cycle.len() > 5 { ", ..." } else { "" }
            );
            for key in on_cycle {
                refused
                    .entry(key.clone())
                    .or_insert_with(|| refuse(key, message.clone()));
            }
        }
        new_specs.retain(|s| !refused.contains_key(&s.key) || self.tasks.contains_key(&s.key));
        (refused, new_specs)
    }

    fn update_graph(&mut self, client: ClientId, specs: Vec<TaskSpec>, wanted: Vec<Key>) {
        // Validation first: bad input is answered to this client alone and
        // never reaches the state (see `check_submission`).
        let (refused, specs) = self.check_submission(specs);
        let submitted: KeySet = specs.iter().map(|s| s.key.clone()).collect();
        let mut reported = KeySet::default();
        let wanted: Vec<Key> = wanted
            .into_iter()
            .filter(|key| {
                let error = if let Some(error) = refused.get(key) {
                    error.clone()
                } else if submitted.contains(key) || self.tasks.contains_key(key) {
                    return true;
                } else {
                    TaskError {
                        key: key.clone(),
                        op: "update-graph".into(),
                        message: format!(
                            "wanted key {key} is neither in the submission nor known to the \
                             scheduler; submit its task with it"
                        ),
                    }
                };
                if reported.insert(key.clone()) {
                    self.actions.push(Action::Report {
                        client,
                        key: key.clone(),
                        outcome: Outcome::Erred(error),
                    });
                }
                false
            })
            .collect();
        self.generation += 1;
        let generation = self.generation;
        let mut new_keys = Vec::with_capacity(specs.len());
        for spec in specs {
            if self.tasks.contains_key(&spec.key) {
                // Known: keep its state and spec (equal keys, equal tasks).
                // An in-process spec lives as long as the scheduler holds it.
                continue;
            }
            new_keys.push(spec.key.clone());
            let mut priority = spec.priority;
            priority.generation = generation;
            let key = spec.key.clone();
            self.tasks.insert(
                key.clone(),
                TaskState {
                    key,
                    status: Status::Released,
                    run_spec: spec.run_spec,
                    priority,
                    dependencies: spec.dependencies,
                    dependents: KeySet::default(),
                    waiting_on: KeySet::default(),
                    waiters: KeySet::default(),
                    who_has: BTreeSet::new(),
                    processing_on: None,
                    run_id: 0,
                    who_wants: BTreeSet::new(),
                    nbytes: 0,
                    error: None,
                    retries: spec.retries,
                    suspicious: 0,
                    restrictions: spec.restrictions,
                    story: Vec::new(),
                },
            );
        }
        // Link the new tasks to their dependencies (known: clients send whole
        // graphs), naming each by the state's own key (see `canonical`).
        for key in &new_keys {
            let deps = std::mem::take(&mut self.tasks.get_mut(key).expect("inserted").dependencies);
            let deps: Vec<Key> = deps.into_iter().map(|d| self.canonical(d)).collect();
            for d in &deps {
                if let Some(dts) = self.tasks.get_mut(d) {
                    dts.dependents.insert(key.clone());
                }
            }
            self.tasks.get_mut(key).expect("inserted").dependencies = deps;
            self.tell_created(key, "created");
        }
        for key in wanted {
            let key = self.canonical(key);
            let Some(ts) = self.tasks.get_mut(&key) else {
                continue;
            };
            ts.who_wants.insert(client);
            match ts.status {
                Status::Memory => self.actions.push(Action::Report {
                    client,
                    key,
                    outcome: Outcome::Memory,
                }),
                Status::Erred => {
                    let error = ts.error.clone().unwrap_or_else(|| unknown_error(&key));
                    self.actions.push(Action::Report {
                        client,
                        key,
                        outcome: Outcome::Erred(error),
                    })
                }
                Status::Released => self.recommend(&key, Status::Waiting, "wanted by a client"),
                _ => {}
            }
        }
        // Tasks nobody wants and nothing reads: forget them (and, by cascade,
        // their unneeded dependencies).
        for key in new_keys {
            let ts = &self.tasks[&key];
            if ts.who_wants.is_empty() && ts.dependents.is_empty() {
                self.recommend(&key, Status::Forgotten, "submitted but not wanted");
            }
        }
    }

    fn update_data(
        &mut self,
        client: ClientId,
        keys: Vec<(Key, u64, Bytes)>,
        workers: &[WorkerId],
    ) {
        let holders: BTreeSet<WorkerId> = workers
            .iter()
            .copied()
            .filter(|w| self.workers.contains_key(w))
            .collect();
        let mut specs = Vec::new();
        for (key, nbytes, run_spec) in keys {
            if self.tasks.contains_key(&key) || holders.is_empty() {
                // Known already, or its workers died meanwhile: an ordinary task
                // (its run_spec says the data was lost).
                specs.push(TaskSpec {
                    key,
                    dependencies: Vec::new(),
                    run_spec,
                    priority: Priority::default(),
                    retries: 0,
                    restrictions: None,
                });
                continue;
            }
            for w in &holders {
                let ws = self.workers.get_mut(w).expect("filtered");
                ws.has_what.insert(key.clone());
                ws.nbytes += nbytes;
            }
            self.tasks.insert(
                key.clone(),
                TaskState {
                    key: key.clone(),
                    status: Status::Memory,
                    run_spec,
                    priority: Priority::default(),
                    dependencies: Vec::new(),
                    dependents: KeySet::default(),
                    waiting_on: KeySet::default(),
                    waiters: KeySet::default(),
                    who_has: holders.clone(),
                    processing_on: None,
                    run_id: 0,
                    who_wants: BTreeSet::from([client]),
                    nbytes,
                    error: None,
                    retries: 0,
                    suspicious: 0,
                    restrictions: None,
                    story: vec![(Status::Released, Status::Memory, "scattered by a client")],
                },
            );
            self.tell_created(&key, "scattered by a client");
            self.touched.push(key.clone());
            self.actions.push(Action::Report {
                client,
                key,
                outcome: Outcome::Memory,
            });
        }
        if !specs.is_empty() {
            let wanted = specs.iter().map(|s| s.key.clone()).collect();
            self.update_graph(client, specs, wanted);
        }
    }

    /// Erred `keys` and the erred tasks they depend on go back to released,
    /// dependencies first; then the keys wait again (pulling those in).
    fn retry(&mut self, keys: &[Key]) {
        let mut order = Vec::new();
        let mut seen = KeySet::default();
        let mut stack: Vec<(Key, bool)> = keys.iter().map(|k| (k.clone(), false)).collect();
        while let Some((key, expanded)) = stack.pop() {
            if expanded {
                order.push(key);
                continue;
            }
            let Some(ts) = self.tasks.get(&key) else {
                continue;
            };
            if ts.status != Status::Erred || !seen.insert(key.clone()) {
                continue;
            }
            stack.push((key.clone(), true));
            stack.extend(ts.dependencies.iter().map(|d| (d.clone(), false)));
        }
        for key in &order {
            self.recommend(key, Status::Released, "retried by a client");
        }
        for key in keys {
            if seen.contains(key) {
                self.recommend(key, Status::Waiting, "retried by a client");
            }
        }
    }

    fn task_finished(&mut self, worker: WorkerId, key: Key, nbytes: u64) {
        let current = self.tasks.get(&key).map(|t| (t.status, t.processing_on));
        match current {
            Some((Status::Processing, Some(w))) if w == worker => {}
            Some((Status::Memory, _)) if self.workers.contains_key(&worker) => {
                // Already in memory (it ran twice): the worker's copy is a replica.
                // Never free it here: it may be the copy the scheduler counts on.
                let ts = self.tasks.get_mut(&key).expect("known");
                if ts.who_has.insert(worker) {
                    // Counted at the size recorded for the key, as it will be
                    // discounted when freed.
                    let nbytes = ts.nbytes;
                    let ws = self.workers.get_mut(&worker).expect("checked");
                    ws.has_what.insert(key);
                    ws.nbytes += nbytes;
                }
                return;
            }
            _ => {
                // Stale: the task was rescheduled, released or forgotten meanwhile.
                self.actions.push(Action::Free {
                    worker,
                    keys: vec![key],
                });
                return;
            }
        }
        if let Some(ts) = self.tasks.get_mut(&key) {
            ts.nbytes = nbytes;
            ts.who_has.insert(worker);
        }
        self.recommend(&key, Status::Memory, "finished on a worker");
    }

    fn task_erred(&mut self, worker: WorkerId, key: Key, error: TaskError) {
        let Some(ts) = self.tasks.get_mut(&key) else {
            return;
        };
        if ts.status != Status::Processing || ts.processing_on != Some(worker) {
            return;
        }
        if ts.retries > 0 {
            ts.retries -= 1;
            self.recommend(&key, Status::Released, "failed, retrying");
        } else {
            ts.error = Some(error);
            self.recommend(&key, Status::Erred, "failed on a worker");
        }
    }

    fn missing_data(&mut self, worker: WorkerId, key: &Key, dependency: &Key, errant: &[WorkerId]) {
        if let Some(dts) = self.tasks.get_mut(dependency) {
            let nbytes = dts.nbytes;
            for w in errant {
                if dts.who_has.remove(w) {
                    if let Some(ws) = self.workers.get_mut(w) {
                        ws.has_what.remove(dependency);
                        ws.nbytes = ws.nbytes.saturating_sub(nbytes);
                        // If it does hold it after all (a transient failure),
                        // it must not keep a copy the scheduler forgot.
                        self.actions.push(Action::Free {
                            worker: *w,
                            keys: vec![dependency.clone()],
                        });
                    }
                }
            }
            if dts.who_has.is_empty() && dts.status == Status::Memory {
                // Releasing it sends its processing dependents (`key`) back too.
                self.recommend(dependency, Status::Released, "no copy left (missing data)");
                return;
            }
        }
        let still_here = self
            .tasks
            .get(key)
            .is_some_and(|t| t.status == Status::Processing && t.processing_on == Some(worker));
        if still_here {
            self.recommend(
                key,
                Status::Released,
                "a dependency was missing; send it again",
            );
        }
    }

    fn release_keys(&mut self, client: ClientId, keys: &[Key]) {
        for key in keys {
            let Some(ts) = self.tasks.get_mut(key) else {
                continue;
            };
            if !ts.who_wants.remove(&client) || !ts.who_wants.is_empty() {
                continue;
            }
            self.release_if_unneeded(key, "no client wants it");
        }
    }

    /// Frees `key` when no client wants it and no pending dependent needs it:
    /// forgotten if nothing depends on it any more, else released (its data
    /// freed, its spec kept in case a dependent must be recomputed).
    fn release_if_unneeded(&mut self, key: &Key, why: &'static str) {
        let Some(ts) = self.tasks.get(key) else {
            return;
        };
        if !ts.who_wants.is_empty() || !ts.waiters.is_empty() || self.has_pending_dependent(ts) {
            return;
        }
        if ts.dependents.is_empty() {
            self.recommend(key, Status::Forgotten, why);
        } else if ts.status == Status::Memory {
            self.recommend(key, Status::Released, why);
        }
    }

    fn has_pending_dependent(&self, ts: &TaskState) -> bool {
        ts.dependents.iter().any(|d| {
            self.tasks.get(d).is_some_and(|t| {
                matches!(
                    t.status,
                    Status::Waiting | Status::Queued | Status::NoWorker | Status::Processing
                )
            })
        })
    }

    // ---- transitions ----

    /// Moves `key` to `to`, through the allowed path; logs it in the story.
    pub fn transition(
        &mut self,
        key: &Key,
        to: Status,
        why: &'static str,
    ) -> Result<(), InvariantError> {
        let Some(ts) = self.tasks.get(key) else {
            return Ok(()); // already forgotten
        };
        let (from, was_on) = (ts.status, ts.processing_on);
        // What plugins are told of a value that leaves memory.
        let held = (from == Status::Memory && !self.plugins.is_empty())
            .then(|| (ts.who_has.first().copied(), ts.nbytes));
        if from == to {
            return Ok(());
        }
        if (from, to) == (Status::Erred, Status::Waiting) {
            // Stale: a dependent asked for it, then it erred before this ran;
            // erring told that dependent already. Only a retry (through
            // released) makes an erred task wait again.
            return Ok(());
        }
        use Status::*;
        match (from, to) {
            (Released, Waiting) => self.transition_released_waiting(key),
            (Waiting | NoWorker | Queued, Processing) => self.transition_ready_processing(key),
            (Waiting, Queued) => self.transition_waiting_queued(key),
            (Waiting, NoWorker) => self.transition_waiting_no_worker(key),
            (NoWorker | Queued, Waiting) => self.transition_ready_waiting(key),
            (Processing, Memory) => self.transition_processing_memory(key),
            (Processing | Waiting | Queued | NoWorker, Released) => {
                self.transition_pending_released(key)
            }
            (Memory, Released) => self.transition_memory_released(key),
            (Processing | Waiting | Queued | NoWorker | Released | Memory, Erred) => {
                self.transition_to_erred(key)
            }
            (Released | Erred | Memory | Waiting | Queued | NoWorker | Processing, Forgotten) => {
                self.transition_to_forgotten(key)
            }
            (Erred, Released) => self.transition_erred_released(key),
            (Forgotten, _) => Ok(()),
            (Released, Processing | Queued | NoWorker) => {
                // Reached through waiting: two transitions, each logged and
                // told to plugins once.
                self.transition(key, Waiting, why)?;
                let now = self.tasks.get(key).map(|t| t.status);
                if now == Some(Waiting) {
                    self.transition(key, to, why)?;
                }
                return Ok(());
            }
            _ => Err(self.invariant(
                key,
                format!("impossible transition {from:?} -> {to:?} ({why})"),
            )),
        }?;
        self.touched.push(key.clone());
        let mut task = self.tasks.get_mut(key);
        if let Some(ts) = task.as_deref_mut() {
            let now = ts.status;
            ts.story.push((from, now, why));
        }
        // Scheduler plugins (the dashboard): see scheduler/plugin.rs.
        if !self.plugins.is_empty() {
            self.plugins
                .task_transition(key, from, was_on, held, task.as_deref(), why);
        }
        Ok(())
    }

    fn transition_released_waiting(&mut self, key: &Key) -> Result<(), InvariantError> {
        let deps = self.tasks[key].dependencies.clone();
        let mut waiting_on = KeySet::default();
        for d in &deps {
            let Some(dts) = self.tasks.get_mut(d) else {
                return Err(self.invariant(key, format!("dependency {d} is unknown")));
            };
            match dts.status {
                Status::Memory => {
                    dts.waiters.insert(key.clone());
                }
                Status::Erred => {
                    let error = dts.error.clone();
                    let ts = self.tasks.get_mut(key).expect("known");
                    ts.error = error;
                    ts.status = Status::Released;
                    self.recommend(key, Status::Erred, "a dependency erred");
                    return Ok(());
                }
                Status::Released | Status::Forgotten => {
                    dts.waiters.insert(key.clone());
                    waiting_on.insert(d.clone());
                    self.recommend(d, Status::Waiting, "needed by a dependent");
                }
                _ => {
                    dts.waiters.insert(key.clone());
                    waiting_on.insert(d.clone());
                }
            }
        }
        let ts = self.tasks.get_mut(key).expect("known");
        ts.status = Status::Waiting;
        let ready = waiting_on.is_empty();
        ts.waiting_on = waiting_on;
        if ready {
            self.schedule_ready(key);
        }
        Ok(())
    }

    /// A waiting task whose dependencies are all in memory: send it somewhere.
    fn schedule_ready(&mut self, key: &Key) {
        let ts = &self.tasks[key];
        if self.workers.is_empty() || self.candidates(ts).is_empty() {
            self.recommend(key, Status::NoWorker, "no worker can run it");
        } else if ts.dependencies.is_empty() && self.pick_worker(key).is_none() {
            self.recommend(key, Status::Queued, "every worker is saturated");
        } else {
            self.recommend(key, Status::Processing, "ready");
        }
    }

    fn candidates(&self, ts: &TaskState) -> Vec<WorkerId> {
        self.workers
            .keys()
            .copied()
            .filter(|w| ts.restrictions.as_ref().is_none_or(|r| r.contains(w)))
            .collect()
    }

    /// The best worker for a ready task: for root tasks, the least occupied
    /// unsaturated one; otherwise the one holding the most bytes of its
    /// dependencies, ties broken by occupancy.
    fn pick_worker(&self, key: &Key) -> Option<WorkerId> {
        let ts = &self.tasks[key];
        let candidates = self.candidates(ts);
        let occupancy = |w: &WorkerId| {
            let ws = &self.workers[w];
            (ws.occupied() as u64 * 1000) / u64::from(ws.nthreads)
        };
        if ts.dependencies.is_empty() {
            let per_thread = self.send_ahead(key);
            return candidates
                .into_iter()
                .filter(|w| !self.workers[w].saturated(per_thread) && !self.workers[w].paused)
                .min_by_key(|w| (occupancy(w), self.workers[w].nbytes, *w));
        }
        candidates.into_iter().min_by_key(|w| {
            let local: u64 = ts
                .dependencies
                .iter()
                .filter_map(|d| self.tasks.get(d))
                .filter(|d| d.who_has.contains(w))
                .map(|d| d.nbytes.max(1))
                .sum();
            (std::cmp::Reverse(local), occupancy(w), *w)
        })
    }

    fn transition_ready_processing(&mut self, key: &Key) -> Result<(), InvariantError> {
        let Some(worker) = self.pick_worker(key) else {
            // Saturated (root task) or no candidate: hold it.
            let to = if self.candidates(&self.tasks[key]).is_empty() {
                Status::NoWorker
            } else {
                Status::Queued
            };
            let from = self.tasks[key].status;
            if from != to {
                self.set_ready_holding(key, to);
            }
            return Ok(());
        };
        self.leave_ready_holding(key);
        let ts = self.tasks.get_mut(key).expect("known");
        ts.status = Status::Processing;
        ts.processing_on = Some(worker);
        self.last_run_id += 1;
        ts.run_id = self.last_run_id;
        let run_id = ts.run_id;
        let priority = ts.priority;
        let run_spec = ts.run_spec.clone();
        let deps = ts.dependencies.clone();
        self.workers
            .get_mut(&worker)
            .expect("picked")
            .processing
            .insert(key.clone());
        let who_has = deps
            .iter()
            .map(|d| (d.clone(), self.tasks[d].who_has.iter().copied().collect()))
            .collect();
        self.actions.push(Action::Compute {
            worker,
            key: key.clone(),
            run_spec,
            run_id,
            who_has,
            priority,
        });
        Ok(())
    }

    fn set_ready_holding(&mut self, key: &Key, to: Status) {
        self.leave_ready_holding(key);
        let ts = self.tasks.get_mut(key).expect("known");
        ts.status = to;
        match to {
            Status::Queued => {
                self.queued.insert((ts.priority, key.clone()));
            }
            Status::NoWorker => {
                self.no_worker.insert(key.clone());
            }
            _ => {}
        }
    }

    fn leave_ready_holding(&mut self, key: &Key) {
        let ts = &self.tasks[key];
        match ts.status {
            Status::Queued => {
                self.queued.remove(&(ts.priority, key.clone()));
            }
            Status::NoWorker => {
                self.no_worker.remove(key);
            }
            _ => {}
        }
    }

    fn transition_waiting_queued(&mut self, key: &Key) -> Result<(), InvariantError> {
        self.set_ready_holding(key, Status::Queued);
        Ok(())
    }

    fn transition_waiting_no_worker(&mut self, key: &Key) -> Result<(), InvariantError> {
        self.set_ready_holding(key, Status::NoWorker);
        Ok(())
    }

    fn transition_ready_waiting(&mut self, key: &Key) -> Result<(), InvariantError> {
        self.leave_ready_holding(key);
        self.tasks.get_mut(key).expect("known").status = Status::Waiting;
        self.schedule_ready(key);
        Ok(())
    }

    fn transition_processing_memory(&mut self, key: &Key) -> Result<(), InvariantError> {
        let ts = self.tasks.get_mut(key).expect("known");
        let worker = ts.processing_on.take();
        ts.status = Status::Memory;
        let nbytes = ts.nbytes;
        let dependents: Vec<Key> = ts.dependents.iter().cloned().collect();
        let deps = ts.dependencies.clone();
        let clients: Vec<ClientId> = ts.who_wants.iter().copied().collect();
        if let Some(w) = worker.and_then(|w| self.workers.get_mut(&w)) {
            w.stop_processing(key);
            w.has_what.insert(key.clone());
            w.nbytes += nbytes;
        }
        for client in clients {
            self.actions.push(Action::Report {
                client,
                key: key.clone(),
                outcome: Outcome::Memory,
            });
        }
        for d in dependents {
            let Some(dts) = self.tasks.get_mut(&d) else {
                continue;
            };
            if dts.status == Status::Waiting
                && dts.waiting_on.remove(key)
                && dts.waiting_on.is_empty()
            {
                self.schedule_ready(&d);
            }
        }
        for d in deps {
            if let Some(dts) = self.tasks.get_mut(&d) {
                dts.waiters.remove(key);
                if dts.waiters.is_empty() {
                    self.release_if_unneeded(&d, "its last dependent finished");
                }
            }
        }
        self.release_if_unneeded(key, "finished but not wanted");
        Ok(())
    }

    /// Processing, waiting, queued or no-worker back to released (worker died,
    /// retry, or no longer wanted); re-waits at once if still needed.
    fn transition_pending_released(&mut self, key: &Key) -> Result<(), InvariantError> {
        self.leave_ready_holding(key);
        self.leave_processing(key);
        self.tasks.get_mut(key).expect("known").waiting_on.clear();
        self.recommend_if_needed(key);
        Ok(())
    }

    fn transition_memory_released(&mut self, key: &Key) -> Result<(), InvariantError> {
        self.free_everywhere(key);
        let dependents: Vec<Key> = self.tasks[key].dependents.iter().cloned().collect();
        // Dependents that were about to read it must wait for it again.
        for d in dependents {
            let Some(dts) = self.tasks.get(&d) else {
                continue;
            };
            match dts.status {
                Status::Waiting => {
                    self.tasks
                        .get_mut(&d)
                        .expect("known")
                        .waiting_on
                        .insert(key.clone());
                }
                Status::Processing | Status::Queued | Status::NoWorker => {
                    self.recommend(&d, Status::Released, "a dependency was lost");
                }
                _ => {}
            }
        }
        self.recommend_if_needed(key);
        Ok(())
    }

    /// After a release: wait again if a client or a pending dependent needs the
    /// key, else forget it if nothing depends on it.
    fn recommend_if_needed(&mut self, key: &Key) {
        let ts = &self.tasks[key];
        if !ts.who_wants.is_empty() || self.has_pending_dependent(ts) {
            self.recommend(key, Status::Waiting, "still needed");
        } else if ts.dependents.is_empty() {
            self.recommend(key, Status::Forgotten, "released and not needed");
        }
    }

    fn transition_to_erred(&mut self, key: &Key) -> Result<(), InvariantError> {
        self.leave_ready_holding(key);
        let ts = self.tasks.get_mut(key).expect("known");
        if let Some(w) = ts.processing_on.take() {
            if let Some(ws) = self.workers.get_mut(&w) {
                ws.stop_processing(key);
            }
        }
        let ts = self.tasks.get_mut(key).expect("known");
        let holders: Vec<WorkerId> = std::mem::take(&mut ts.who_has).into_iter().collect();
        let nbytes = ts.nbytes;
        for w in holders {
            if let Some(ws) = self.workers.get_mut(&w) {
                ws.has_what.remove(key);
                ws.nbytes = ws.nbytes.saturating_sub(nbytes);
                self.actions.push(Action::Free {
                    worker: w,
                    keys: vec![key.clone()],
                });
            }
        }
        let ts = self.tasks.get_mut(key).expect("known");
        ts.status = Status::Erred;
        ts.waiting_on.clear();
        let error = ts.error.clone().unwrap_or_else(|| unknown_error(key));
        let clients: Vec<ClientId> = ts.who_wants.iter().copied().collect();
        let dependents: Vec<Key> = ts.dependents.iter().cloned().collect();
        for client in clients {
            self.actions.push(Action::Report {
                client,
                key: key.clone(),
                outcome: Outcome::Erred(error.clone()),
            });
        }
        for d in dependents {
            let Some(dts) = self.tasks.get_mut(&d) else {
                continue;
            };
            if matches!(
                dts.status,
                Status::Waiting | Status::Queued | Status::NoWorker | Status::Processing
            ) {
                dts.error = Some(error.clone());
                self.recommend(&d, Status::Erred, "a dependency erred");
            }
        }
        Ok(())
    }

    fn transition_erred_released(&mut self, key: &Key) -> Result<(), InvariantError> {
        let ts = self.tasks.get_mut(key).expect("known");
        ts.status = Status::Released;
        ts.error = None;
        Ok(())
    }

    fn transition_to_forgotten(&mut self, key: &Key) -> Result<(), InvariantError> {
        let ts = &self.tasks[key];
        if !ts.who_wants.is_empty() || !ts.dependents.is_empty() {
            return Ok(()); // wanted again, or a dependent may need it: stays known
        }
        match ts.status {
            Status::Memory => self.free_everywhere(key),
            Status::Processing => self.leave_processing(key),
            _ => {}
        }
        self.leave_ready_holding(key);
        let ts = self.tasks.remove(key).expect("known");
        for d in &ts.dependencies {
            if let Some(dts) = self.tasks.get_mut(d) {
                dts.dependents.remove(key);
                dts.waiters.remove(key);
                if dts.who_wants.is_empty() && dts.waiters.is_empty() {
                    self.release_if_unneeded(d, "its last dependent was forgotten");
                }
            }
        }
        Ok(())
    }

    /// Marks `key` released and tells every worker holding it to drop it.
    fn free_everywhere(&mut self, key: &Key) {
        let ts = self.tasks.get_mut(key).expect("known");
        let holders: Vec<WorkerId> = std::mem::take(&mut ts.who_has).into_iter().collect();
        let nbytes = ts.nbytes;
        ts.status = Status::Released;
        for w in holders {
            if let Some(ws) = self.workers.get_mut(&w) {
                ws.has_what.remove(key);
                ws.nbytes = ws.nbytes.saturating_sub(nbytes);
                self.actions.push(Action::Free {
                    worker: w,
                    keys: vec![key.clone()],
                });
            }
        }
    }

    fn leave_processing(&mut self, key: &Key) {
        let ts = self.tasks.get_mut(key).expect("known");
        if let Some(w) = ts.processing_on.take() {
            if let Some(ws) = self.workers.get_mut(&w) {
                ws.stop_processing(key);
                self.actions.push(Action::Free {
                    worker: w,
                    keys: vec![key.clone()],
                });
            }
        }
        self.tasks.get_mut(key).expect("known").status = Status::Released;
    }

    /// Sends queued root tasks to workers with free slots, highest priority first.
    fn fill_free_slots(&mut self) -> Result<(), InvariantError> {
        while let Some((_, key)) = self.queued.first().cloned() {
            if self.pick_worker(&key).is_none() {
                break;
            }
            self.transition(&key, Status::Processing, "a worker slot freed")?;
            self.run_recommendations()?;
        }
        Ok(())
    }

    // ---- invariants ----

    fn invariant(&self, key: &Key, message: String) -> InvariantError {
        let story = self
            .tasks
            .get(key)
            .map(|t| {
                t.story
                    .iter()
                    .map(|(a, b, why)| format!("{a:?}->{b:?} ({why})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_else(|| "forgotten".into());
        InvariantError {
            key: key.clone(),
            message,
            story,
        }
    }

    /// Checks every invariant of every task and worker. Debug builds check the
    /// tasks each event touched; tests call this for the whole state.
    pub fn validate(&self) -> Result<(), InvariantError> {
        for ts in self.tasks.values() {
            self.validate_task(ts)?;
        }
        self.validate_workers()
    }

    fn validate_task(&self, ts: &TaskState) -> Result<(), InvariantError> {
        {
            let key = &ts.key;
            let fail = |m: String| Err(self.invariant(key, m));
            match ts.status {
                Status::Memory => {
                    if ts.who_has.is_empty() {
                        return fail("in memory but no worker holds it".into());
                    }
                    if let Some(w) = ts.who_has.iter().find(|w| !self.workers.contains_key(w)) {
                        return fail(format!("held by unknown worker {w}"));
                    }
                }
                Status::Processing => {
                    let Some(w) = ts.processing_on else {
                        return fail("processing on no worker".into());
                    };
                    if !self
                        .workers
                        .get(&w)
                        .is_some_and(|ws| ws.processing.contains(key))
                    {
                        return fail(format!("processing on {w}, which does not list it"));
                    }
                    if ts.restrictions.as_ref().is_some_and(|r| !r.contains(&w)) {
                        return fail(format!("processing on {w}, which its restrictions exclude"));
                    }
                    for d in &ts.dependencies {
                        if self.tasks.get(d).map(|t| t.status) != Some(Status::Memory) {
                            return fail(format!(
                                "processing while dependency {d} is not in memory"
                            ));
                        }
                    }
                }
                Status::Waiting => {
                    for d in &ts.waiting_on {
                        if self.tasks.get(d).map(|t| t.status) == Some(Status::Memory) {
                            return fail(format!("waiting on {d}, which is in memory"));
                        }
                    }
                }
                Status::Queued => {
                    if !self.queued.contains(&(ts.priority, key.clone())) {
                        return fail("queued but not in the queue".into());
                    }
                }
                Status::NoWorker => {
                    if !self.no_worker.contains(key) {
                        return fail("no-worker but not in the no-worker set".into());
                    }
                }
                Status::Released | Status::Erred => {
                    if ts.processing_on.is_some() || !ts.who_has.is_empty() {
                        return fail(format!("{:?} but still on a worker", ts.status));
                    }
                }
                Status::Forgotten => return fail("forgotten task still stored".into()),
            }
            for d in &ts.dependencies {
                if !self.tasks.contains_key(d) {
                    return fail(format!("dependency {d} was forgotten before its dependent"));
                }
            }
        }
        Ok(())
    }

    fn validate_workers(&self) -> Result<(), InvariantError> {
        for (w, ws) in &self.workers {
            for k in &ws.processing {
                let ok = self
                    .tasks
                    .get(k)
                    .is_some_and(|t| t.status == Status::Processing && t.processing_on == Some(*w));
                if !ok {
                    return Err(self.invariant(k, format!("worker {w} lists it as processing")));
                }
            }
            if let Some(k) = ws.long_running.iter().find(|k| !ws.processing.contains(*k)) {
                return Err(self.invariant(k, format!("long-running on {w} but not processing")));
            }
            let mut held = 0u64;
            for k in &ws.has_what {
                match self.tasks.get(k) {
                    Some(t) if t.who_has.contains(w) => held += t.nbytes,
                    _ => return Err(self.invariant(k, format!("worker {w} lists it in memory"))),
                }
            }
            if held != ws.nbytes {
                let key = ws
                    .has_what
                    .iter()
                    .next()
                    .cloned()
                    .unwrap_or_else(|| Key::named("-"));
                return Err(self.invariant(
                    &key,
                    format!(
                        "worker {w} is counted as holding {} bytes, its keys hold {held}",
                        ws.nbytes
                    ),
                ));
            }
        }
        Ok(())
    }
}
