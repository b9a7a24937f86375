//! What the dashboard shows, built from the scheduler's transitions: counts
//! per task group and state, a bounded task stream, the worker table.
//!
//! The scheduler reports each task's transitions as one chain (created from
//! forgotten, each `from` the previous `to`, see
//! [`TaskTransition`]), so the counts follow from `from` and `to` alone: the
//! model keeps no table of keys, only the keys now processing (for the task
//! stream's start times), a set the size of what the workers run.
//!
//! The graph view ([`GraphJson`]) holds the current computation's tasks and
//! their dependencies, up to [`GRAPH_LIMIT`] tasks: a key joins it when it
//! is created; a key the scheduler forgets stays with its last state
//! (marked forgotten) until a new key arrives while the scheduler holds no
//! live key, which starts a new graph. Beyond the limit the view keeps only
//! a count (no per-transition work) until the scheduler is empty again.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use dask_core::{Key, KeyMap};
use serde::Serialize;

use crate::scheduler::plugin::TaskTransition;
use crate::scheduler::state::{Status, WorkerId};

/// How many finished tasks the task stream remembers.
pub const TASK_STREAM_CAPACITY: usize = 2000;

/// Most tasks the graph view draws; a larger computation shows a count.
pub const GRAPH_LIMIT: usize = 500;

/// Every state, in the order of [`StateCounts`]'s array.
pub const STATES: [Status; 8] = [
    Status::Released,
    Status::Waiting,
    Status::NoWorker,
    Status::Queued,
    Status::Processing,
    Status::Memory,
    Status::Erred,
    Status::Forgotten,
];

/// Dask's name of a state (`no-worker`, `processing`, ...).
pub fn status_name(status: Status) -> &'static str {
    match status {
        Status::Released => "released",
        Status::Waiting => "waiting",
        Status::NoWorker => "no-worker",
        Status::Queued => "queued",
        Status::Processing => "processing",
        Status::Memory => "memory",
        Status::Erred => "erred",
        Status::Forgotten => "forgotten",
    }
}

fn index(status: Status) -> usize {
    STATES.iter().position(|s| *s == status).unwrap_or(0)
}

/// The task group of a key name, like Dask's `key_split`: the name without
/// its tokens (`inc-3f2a9c0d...` -> `inc`, `sum-agg-77aa...` -> `sum-agg`).
///
/// ```
/// use dask_distributed::dashboard::model::task_group;
/// assert_eq!(task_group("inc-3f2a9c0d11aa"), "inc");
/// assert_eq!(task_group("sum-agg-deadbeef00"), "sum-agg");
/// assert_eq!(task_group("x"), "x");
/// assert_eq!(task_group("m7"), "m7");
/// ```
pub fn task_group(name: &str) -> &str {
    let mut end = 0;
    for (i, word) in name.split('-').enumerate() {
        let is_token = word.is_empty()
            || word.bytes().all(|b| b.is_ascii_digit())
            || (word.len() >= 8 && word.bytes().all(|b| b.is_ascii_hexdigit()));
        if i > 0 && is_token {
            break;
        }
        end = if i == 0 {
            word.len()
        } else {
            end + 1 + word.len()
        };
    }
    &name[..end]
}

/// Number of tasks in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateCounts([u64; 8]);

impl StateCounts {
    /// Tasks in `status`.
    pub fn get(&self, status: Status) -> u64 {
        self.0[index(status)]
    }

    fn move_one(&mut self, from: Option<Status>, to: Status) {
        if let Some(from) = from {
            let c = &mut self.0[index(from)];
            *c = c.saturating_sub(1);
        }
        self.0[index(to)] += 1;
    }

    /// The counts as JSON-friendly fields.
    pub fn to_json(&self) -> CountsJson {
        CountsJson {
            released: self.get(Status::Released),
            waiting: self.get(Status::Waiting),
            no_worker: self.get(Status::NoWorker),
            queued: self.get(Status::Queued),
            processing: self.get(Status::Processing),
            memory: self.get(Status::Memory),
            erred: self.get(Status::Erred),
            forgotten: self.get(Status::Forgotten),
        }
    }
}

/// Counts by state, as served by the JSON API.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct CountsJson {
    /// Released (known, not running, not held).
    pub released: u64,
    /// Waiting for dependencies.
    pub waiting: u64,
    /// Ready, no worker to run it.
    pub no_worker: u64,
    /// Ready, held back while workers are saturated.
    pub queued: u64,
    /// Running on a worker.
    pub processing: u64,
    /// Held in a worker's memory.
    pub memory: u64,
    /// Failed.
    pub erred: u64,
    /// Removed from the scheduler.
    pub forgotten: u64,
}

#[derive(Debug, Default)]
struct Group {
    name: String,
    counts: StateCounts,
    total: u64,
    done: u64,
}

/// The task groups seen, in order of first appearance.
#[derive(Debug, Default)]
struct Groups {
    list: Vec<Group>,
    index: HashMap<Box<str>, usize>,
    /// The last few key names looked up and their groups: keys of one
    /// collection share their name's `Arc`, found again by address (held
    /// here, so the address cannot be reused by another name). A few, since
    /// a graph's layers interleave (a reduction's leaves and sums).
    recent: [Option<(Arc<str>, usize)>; RECENT_NAMES],
    /// The slot of `recent` replaced next.
    next: usize,
}

/// Key names [`Groups`] recognises by address.
const RECENT_NAMES: usize = 4;

impl Groups {
    /// The group of `key`, added if new.
    fn of_key(&mut self, key: &Key) -> usize {
        let address = key.name().as_ptr();
        for (name, group) in self.recent.iter().flatten() {
            if std::ptr::eq(name.as_ptr(), address) {
                return *group;
            }
        }
        // Keys decoded from messages have a name each: compared by content.
        for (name, group) in self.recent.iter().flatten() {
            if **name == *key.name() {
                return *group;
            }
        }
        let group = self.index_of(key.name());
        self.recent[self.next] = Some((key.shared_name(), group));
        self.next = (self.next + 1) % RECENT_NAMES;
        group
    }

    /// The group of a key name, added if new. Keys arrive in runs of one
    /// group, so the newest group is tried before the map.
    fn index_of(&mut self, key_name: &str) -> usize {
        let name = task_group(key_name);
        if let Some(last) = self.list.last() {
            if last.name == name {
                return self.list.len() - 1;
            }
        }
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        self.list.push(Group {
            name: name.to_owned(),
            ..Default::default()
        });
        self.index.insert(name.into(), self.list.len() - 1);
        self.list.len() - 1
    }

    fn iter(&self) -> std::slice::Iter<'_, Group> {
        self.list.iter()
    }
}

impl std::ops::Index<usize> for Groups {
    type Output = Group;
    fn index(&self, i: usize) -> &Group {
        &self.list[i]
    }
}

impl std::ops::IndexMut<usize> for Groups {
    fn index_mut(&mut self, i: usize) -> &mut Group {
        &mut self.list[i]
    }
}

#[derive(Debug, Default)]
struct Worker {
    address: String,
    nthreads: u32,
    in_flight: u64,
    memory: u64,
    done: u64,
}

#[derive(Debug, Clone)]
struct StreamEntry {
    key: Key,
    group: usize,
    worker: WorkerId,
    start: f64,
    end: f64,
    erred: bool,
}

/// The dashboard's state; fed by [`DashboardModel::apply`], read by snapshots.
#[derive(Debug)]
pub struct DashboardModel {
    started: Instant,
    /// Tasks the scheduler holds (created and not forgotten).
    live: u64,
    /// Keys processing, and since when (for the task stream).
    processing: KeyMap<f64>,
    groups: Groups,
    counts: StateCounts,
    finished_total: u64,
    erred_total: u64,
    transitions_total: u64,
    workers: BTreeMap<WorkerId, Worker>,
    stream: VecDeque<StreamEntry>,
    graph: GraphView,
}

/// One task of the graph view.
#[derive(Debug)]
struct GraphNode {
    key: Key,
    group: usize,
    /// Its dependencies' keys (resolved to nodes when served: a dependency
    /// may join the view after its dependent).
    deps: Vec<Key>,
    status: Status,
    forgotten: bool,
}

/// The current computation's graph, for small graphs.
#[derive(Debug, Default)]
struct GraphView {
    nodes: Vec<GraphNode>,
    index: KeyMap<usize>,
    /// More tasks than [`GRAPH_LIMIT`]: only counted.
    too_big: bool,
    /// A new graph started (numbers the graphs).
    generation: u64,
    /// Changes of the node list (added, compacted, reset).
    structure: u64,
    /// Changes of anything drawn (structure or a node's state).
    version: u64,
}

impl GraphView {
    fn reset(&mut self) {
        self.nodes.clear();
        self.index.clear();
        self.too_big = false;
        self.generation += 1;
        self.structure += 1;
        self.version += 1;
    }

    /// Drops forgotten nodes; true if that made room.
    fn compact(&mut self) -> bool {
        let before = self.nodes.len();
        self.nodes.retain(|n| !n.forgotten);
        if self.nodes.len() == before {
            return false;
        }
        self.index.clear();
        for (i, n) in self.nodes.iter().enumerate() {
            self.index.insert(n.key.clone(), i);
        }
        self.structure += 1;
        self.version += 1;
        true
    }

    /// A key seen for the first time (or again after it was forgotten).
    fn add(&mut self, key: &Key, group: usize, deps: &[Key], status: Status) {
        if self.too_big {
            return;
        }
        if let Some(&i) = self.index.get(key) {
            let n = &mut self.nodes[i];
            n.forgotten = false;
            n.status = status;
            n.deps = deps.to_vec();
            self.structure += 1;
            self.version += 1;
            return;
        }
        if self.nodes.len() >= GRAPH_LIMIT && !self.compact() {
            self.nodes = Vec::new();
            self.index = KeyMap::default();
            self.too_big = true;
            self.structure += 1;
            self.version += 1;
            return;
        }
        self.index.insert(key.clone(), self.nodes.len());
        self.nodes.push(GraphNode {
            key: key.clone(),
            group,
            deps: deps.to_vec(),
            status,
            forgotten: false,
        });
        self.structure += 1;
        self.version += 1;
    }

    fn set(&mut self, key: &Key, status: Status) {
        if self.too_big {
            return;
        }
        if let Some(&i) = self.index.get(key) {
            let n = &mut self.nodes[i];
            if status == Status::Forgotten {
                n.forgotten = true;
            } else {
                n.status = status;
            }
            self.version += 1;
        }
    }
}

impl Default for DashboardModel {
    fn default() -> Self {
        DashboardModel {
            started: Instant::now(),
            live: 0,
            processing: KeyMap::default(),
            groups: Groups::default(),
            counts: StateCounts::default(),
            finished_total: 0,
            erred_total: 0,
            transitions_total: 0,
            workers: BTreeMap::new(),
            stream: VecDeque::new(),
            graph: GraphView::default(),
        }
    }
}

impl DashboardModel {
    /// An empty model; times are counted from now.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one task transition (one of the scheduler's chain, see
    /// [`TaskTransition`]).
    ///
    /// No hash lookup, except for transitions to and from processing (a
    /// table of the keys now running); a key's group is found by its name's
    /// `Arc`, the previous key's first (graphs number their keys in runs of
    /// one name).
    pub fn apply(&mut self, t: &TaskTransition<'_>) {
        self.transitions_total += 1;
        let group = self.groups.of_key(t.key);
        if t.from == Status::Forgotten {
            // Created: the key enters the counts.
            if self.live == 0 && (self.graph.too_big || !self.graph.nodes.is_empty()) {
                // The scheduler held nothing: a new computation starts.
                self.graph.reset();
            }
            self.live += 1;
            self.groups[group].total += 1;
            self.graph.add(t.key, group, t.dependencies, t.to);
        } else {
            self.graph.set(t.key, t.to);
        }
        let from = (t.from != Status::Forgotten).then_some(t.from);
        self.counts.move_one(from, t.to);
        self.groups[group].counts.move_one(from, t.to);
        if t.from == Status::Processing {
            let started = self.processing.remove(t.key);
            if let Some(w) = t.worker.and_then(|w| self.workers.get_mut(&w)) {
                w.in_flight = w.in_flight.saturating_sub(1);
            }
            if let (Some(worker), Status::Memory | Status::Erred) = (t.worker, t.to) {
                if self.stream.len() == TASK_STREAM_CAPACITY {
                    self.stream.pop_front();
                }
                self.stream.push_back(StreamEntry {
                    key: t.key.clone(),
                    group,
                    worker,
                    start: started.unwrap_or(0.0),
                    end: self.started.elapsed().as_secs_f64(),
                    erred: t.to == Status::Erred,
                });
            }
        }
        if t.from == Status::Memory {
            if let Some(w) = t.worker.and_then(|w| self.workers.get_mut(&w)) {
                w.memory = w.memory.saturating_sub(t.nbytes);
            }
        }
        match t.to {
            Status::Processing => {
                let now = self.started.elapsed().as_secs_f64();
                self.processing.insert(t.key.clone(), now);
                if let Some(w) = t.worker.and_then(|w| self.workers.get_mut(&w)) {
                    w.in_flight += 1;
                }
            }
            Status::Memory => {
                if let Some(w) = t.worker.and_then(|w| self.workers.get_mut(&w)) {
                    w.memory += t.nbytes;
                    w.done += u64::from(t.from == Status::Processing);
                }
                self.finished_total += u64::from(t.from == Status::Processing);
                if t.first_result {
                    self.groups[group].done += 1;
                }
            }
            Status::Erred => self.erred_total += 1,
            Status::Forgotten => self.live = self.live.saturating_sub(1),
            _ => {}
        }
    }

    /// Records a worker that joined.
    pub fn add_worker(&mut self, worker: WorkerId, nthreads: u32) {
        let w = self.workers.entry(worker).or_default();
        w.nthreads = nthreads;
    }

    /// Records a worker's data address.
    pub fn worker_address(&mut self, worker: WorkerId, address: &str) {
        self.workers.entry(worker).or_default().address = address.to_owned();
    }

    /// Records a worker that left.
    pub fn remove_worker(&mut self, worker: WorkerId) {
        self.workers.remove(&worker);
    }

    /// Everything the page shows, with at most `stream` task-stream entries
    /// (the newest).
    pub fn snapshot(&self, stream: usize) -> Snapshot {
        Snapshot {
            uptime_s: self.started.elapsed().as_secs_f64(),
            tasks: self.counts.to_json(),
            tasks_seen: self.groups.iter().map(|g| g.total).sum(),
            tasks_done: self.groups.iter().map(|g| g.done).sum(),
            finished_total: self.finished_total,
            erred_total: self.erred_total,
            transitions_total: self.transitions_total,
            groups: self
                .groups
                .iter()
                .map(|g| GroupJson {
                    name: g.name.clone(),
                    total: g.total,
                    done: g.done,
                    counts: g.counts.to_json(),
                })
                .collect(),
            workers: self.workers(),
            stream: self
                .stream
                .iter()
                .skip(self.stream.len().saturating_sub(stream))
                .map(|s| StreamJson {
                    key: s.key.to_string(),
                    group: self.groups[s.group].name.clone(),
                    worker: s.worker,
                    start_s: s.start,
                    end_s: s.end,
                    erred: s.erred,
                })
                .collect(),
        }
    }

    /// Changes of the graph view: (node list, anything drawn). Equal numbers,
    /// equal views.
    pub fn graph_versions(&self) -> (u64, u64) {
        (self.graph.structure, self.graph.version)
    }

    /// The graph view: every node with its dependencies and state, or only
    /// the task count when the computation is larger than [`GRAPH_LIMIT`].
    pub fn graph(&self) -> GraphJson {
        let g = &self.graph;
        GraphJson {
            generation: g.generation,
            structure: g.structure,
            limit: GRAPH_LIMIT,
            too_big: g.too_big,
            tasks: if g.too_big {
                self.live
            } else {
                g.nodes.len() as u64
            },
            nodes: g
                .nodes
                .iter()
                .map(|n| GraphNodeJson {
                    key: n.key.to_string(),
                    group: self.groups[n.group].name.clone(),
                    deps: n
                        .deps
                        .iter()
                        .filter_map(|d| g.index.get(d).copied())
                        .collect(),
                    state: status_name(n.status),
                    forgotten: n.forgotten,
                })
                .collect(),
        }
    }

    /// The graph view's node states only, in node order (for a client that
    /// holds the structure of the same `structure` number).
    pub fn graph_states(&self) -> GraphStatesJson {
        GraphStatesJson {
            generation: self.graph.generation,
            structure: self.graph.structure,
            states: self
                .graph
                .nodes
                .iter()
                .map(|n| status_name(n.status))
                .collect(),
            forgotten: self
                .graph
                .nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| n.forgotten)
                .map(|(i, _)| i)
                .collect(),
        }
    }

    /// The worker table.
    pub fn workers(&self) -> Vec<WorkerJson> {
        self.workers
            .iter()
            .map(|(id, w)| WorkerJson {
                id: *id,
                address: w.address.clone(),
                nthreads: w.nthreads,
                in_flight: w.in_flight,
                memory_bytes: w.memory,
                tasks_done: w.done,
            })
            .collect()
    }
}

/// One task group's progress.
#[derive(Debug, Clone, Serialize)]
pub struct GroupJson {
    /// The group's name (key prefix).
    pub name: String,
    /// Distinct keys of the group seen so far.
    pub total: u64,
    /// Distinct keys computed at least once.
    pub done: u64,
    /// Keys by current state.
    pub counts: CountsJson,
}

/// The graph view, as `/api/graph` and the `graph` push event serve it.
#[derive(Debug, Clone, Serialize)]
pub struct GraphJson {
    /// Numbers the computations the view showed (a new one resets it).
    pub generation: u64,
    /// Numbers the node lists: states events refer to it.
    pub structure: u64,
    /// Most tasks drawn ([`GRAPH_LIMIT`]).
    pub limit: usize,
    /// Whether the computation is larger than `limit` (then `nodes` is empty).
    pub too_big: bool,
    /// Tasks in the computation (live ones when too big).
    pub tasks: u64,
    /// The tasks, in the order they arrived.
    pub nodes: Vec<GraphNodeJson>,
}

/// One task of the graph view.
#[derive(Debug, Clone, Serialize)]
pub struct GraphNodeJson {
    /// The key, as Dask prints it.
    pub key: String,
    /// Its task group.
    pub group: String,
    /// Indices (into `nodes`) of its dependencies in the view.
    pub deps: Vec<usize>,
    /// Its state (Dask's name); the last one before it was forgotten.
    pub state: &'static str,
    /// Whether the scheduler forgot it (its computation is over).
    pub forgotten: bool,
}

/// The graph view's states, for a client that has its structure.
#[derive(Debug, Clone, Serialize)]
pub struct GraphStatesJson {
    /// As in [`GraphJson`].
    pub generation: u64,
    /// The node list these states are for ([`GraphJson::structure`]).
    pub structure: u64,
    /// Each node's state, in node order.
    pub states: Vec<&'static str>,
    /// Indices of the forgotten nodes.
    pub forgotten: Vec<usize>,
}

/// One worker's row.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerJson {
    /// The scheduler's number for it.
    pub id: WorkerId,
    /// Where it serves its data.
    pub address: String,
    /// Task threads.
    pub nthreads: u32,
    /// Tasks sent to it and not finished.
    pub in_flight: u64,
    /// Bytes of results it holds, as reported when they finished.
    pub memory_bytes: u64,
    /// Tasks it finished.
    pub tasks_done: u64,
}

/// One finished task in the task stream (times in seconds since the
/// dashboard started, as seen by the scheduler).
#[derive(Debug, Clone, Serialize)]
pub struct StreamJson {
    /// The key, as Dask prints it.
    pub key: String,
    /// Its task group.
    pub group: String,
    /// The worker that ran it.
    pub worker: WorkerId,
    /// When the scheduler sent it.
    pub start_s: f64,
    /// When the scheduler heard it finished.
    pub end_s: f64,
    /// Whether it failed.
    pub erred: bool,
}

/// The whole dashboard state at one moment, as `/api/status` serves it.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// Seconds since the dashboard started.
    pub uptime_s: f64,
    /// Tasks by current state (forgotten: removed so far).
    pub tasks: CountsJson,
    /// Distinct keys seen.
    pub tasks_seen: u64,
    /// Distinct keys computed at least once.
    pub tasks_done: u64,
    /// Transitions to memory (recomputations count again).
    pub finished_total: u64,
    /// Transitions to erred.
    pub erred_total: u64,
    /// All transitions seen.
    pub transitions_total: u64,
    /// Progress per task group, in order of appearance.
    pub groups: Vec<GroupJson>,
    /// The worker table.
    pub workers: Vec<WorkerJson>,
    /// The newest task-stream entries, oldest first.
    pub stream: Vec<StreamJson>,
}
