//! Live updates for the dashboard's pages: server-sent events on
//! `/api/events?topics=status,graph,tasks`.
//!
//! Each connection is a lazy stream: it wakes every `interval` ms (default
//! [`PUSH_INTERVAL`], `?interval=N` between [`MIN_INTERVAL_MS`] and
//! [`MAX_INTERVAL_MS`]) and sends an event only for what changed since it
//! last sent (the plugin bumps [`Dashboard::version`]; an unchanged version
//! costs one atomic load, not the model's lock). Nothing runs for a page that
//! is not connected, nothing is added to the scheduler's hot path, and a
//! connection holds at most one pending batch (the stream makes the next
//! event only when the socket took the previous one): a slow reader gets
//! fewer, fresher snapshots, never a growing buffer. At most
//! [`MAX_PUSH_STREAMS`] streams are open at once. Streams end (with a
//! `closed` event) when the scheduler stops or the server shuts down.
//!
//! Events (`event:` name, `data:` JSON):
//! - `status`: what `/api/status` answers.
//! - `graph`: the graph view ([`GraphJson`](super::model::GraphJson)) when
//!   its node list changed; `graph-states` ([`GraphStatesJson`](super::model::GraphStatesJson))
//!   when only states changed.
//! - `tasks`: new task-stream records (as `/api/task-stream`) and the
//!   worker table: at most the newest [`TASKS_PER_EVENT`] since the last
//!   event; older new ones are skipped and counted in `skipped` (a page
//!   follows a busy cluster by a sample, as Dask's task stream keeps its
//!   newest rectangles; `/api/task-stream` pages through all of them); the
//!   event id is the next sequence number, so a reconnecting browser
//!   (`Last-Event-ID`) continues where it stopped.
//! - `closed`: the scheduler stopped; the stream ends (and asks the browser
//!   to wait 30 s before it reconnects).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::{Interval, MissedTickBehavior};

use super::http::{query_u64, task_stream_page, ApiStatus, App};
use super::model::WorkerJson;
use super::PAGE_STREAM_ENTRIES;

/// How often a connected page is brought up to date by default.
pub const PUSH_INTERVAL: Duration = Duration::from_millis(250);
/// Shortest interval a client may ask for.
pub const MIN_INTERVAL_MS: u64 = 20;
/// Longest interval a client may ask for.
pub const MAX_INTERVAL_MS: u64 = 10_000;
/// Most task-stream records one `tasks` event carries (the newest).
pub const TASKS_PER_EVENT: u64 = 1000;
/// Most push streams open at once; more are refused with 503.
pub const MAX_PUSH_STREAMS: usize = 64;
/// A comment line this often keeps idle connections (and proxies) alive and
/// finds closed ones.
const KEEP_ALIVE: Duration = Duration::from_secs(10);
/// How long a browser waits before reconnecting to a stopped dashboard.
const CLOSED_RETRY: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, Default)]
struct Topics {
    status: bool,
    graph: bool,
    tasks: bool,
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, message + "\n").into_response()
}

fn parse_topics(query: Option<&str>) -> Result<Topics, String> {
    let asked = query
        .unwrap_or("")
        .split('&')
        .find_map(|p| p.strip_prefix("topics="))
        .unwrap_or("status");
    let mut topics = Topics::default();
    for t in asked.split([',', '+']).filter(|t| !t.is_empty()) {
        match t {
            "status" => topics.status = true,
            "graph" => topics.graph = true,
            "tasks" => topics.tasks = true,
            other => {
                return Err(format!(
                    "unknown topic {other:?}: ask for topics=status,graph,tasks (any of them, comma separated)"
                ))
            }
        }
    }
    if !(topics.status || topics.graph || topics.tasks) {
        return Err("no topic: ask for topics=status,graph,tasks (any of them)".into());
    }
    Ok(topics)
}

/// Frees a stream's slot when the stream is dropped.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `GET /api/events`: the push stream (see the module docs).
pub(super) async fn api_events(State(app): State<App>, uri: Uri, headers: HeaderMap) -> Response {
    let query = uri.query();
    let topics = match parse_topics(query) {
        Ok(t) => t,
        Err(m) => return bad_request(m),
    };
    let has_interval = query.is_some_and(|q| q.split('&').any(|p| p.starts_with("interval=")));
    let interval_ms = match query_u64(query, "interval") {
        Some(ms) if (MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&ms) => ms,
        None if !has_interval => u64::try_from(PUSH_INTERVAL.as_millis()).unwrap_or(250),
        _ => {
            return bad_request(format!(
            "interval must be a number of milliseconds from {MIN_INTERVAL_MS} to {MAX_INTERVAL_MS}"
        ))
        }
    };
    // Where the task stream continues: a reconnecting browser's last id, or
    // `since`, else the newest records.
    let cursor = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .or_else(|| query_u64(query, "since"));
    if app.streams.fetch_add(1, Ordering::SeqCst) >= MAX_PUSH_STREAMS {
        app.streams.fetch_sub(1, Ordering::SeqCst);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "{MAX_PUSH_STREAMS} dashboard pages are already connected: close some and retry\n"
            ),
        )
            .into_response();
    }
    let slot = Slot(app.streams.clone());
    let mut tick = tokio::time::interval(Duration::from_millis(interval_ms));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let closed = app.dashboard.closed();
    let push = Push {
        app,
        topics,
        tick,
        closed,
        pending: VecDeque::new(),
        done: false,
        version: None,
        graph: None,
        cursor,
        lanes: None,
        tasks_version: None,
        _slot: slot,
    };
    let stream = futures_util::stream::unfold(push, |mut push| async move {
        let event = push.next().await?;
        Some((Ok::<_, Infallible>(event), push))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}

/// One connection's state: what it last sent.
struct Push {
    app: App,
    topics: Topics,
    tick: Interval,
    closed: watch::Receiver<bool>,
    pending: VecDeque<Event>,
    done: bool,
    /// Dashboard version of the last status/graph check.
    version: Option<u64>,
    /// (structure, version) of the graph view last sent.
    graph: Option<(u64, u64)>,
    /// Next task-stream sequence number to send.
    cursor: Option<u64>,
    /// The lanes (worker address, threads) last sent with `tasks`.
    lanes: Option<Vec<(String, u32)>>,
    /// Dashboard version of the last `tasks` check.
    tasks_version: Option<u64>,
    _slot: Slot,
}

/// The `tasks` event.
#[derive(Serialize)]
struct TasksEvent {
    #[serde(flatten)]
    page: super::http::ApiTaskStream,
    /// New records left out (more than [`TASKS_PER_EVENT`] since the last).
    skipped: u64,
    workers: Vec<WorkerJson>,
}

fn event<T: Serialize>(name: &'static str, data: &T) -> Option<Event> {
    match Event::default().event(name).json_data(data) {
        Ok(e) => Some(e),
        Err(e) => {
            eprintln!("dask-rs dashboard: could not encode a {name} event ({e}); skipped");
            None
        }
    }
}

impl Push {
    /// The next event: waits for a tick with a change, or the end.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(e);
            }
            if self.done {
                return None;
            }
            if *self.closed.borrow_and_update() {
                self.done = true;
                return Some(
                    Event::default()
                        .event("closed")
                        .data("the scheduler stopped")
                        .retry(CLOSED_RETRY),
                );
            }
            let ticked = tokio::select! {
                _ = self.tick.tick() => true,
                changed = self.closed.changed() => {
                    // Err: the dashboard is gone with its server.
                    self.done = changed.is_err();
                    false
                }
            };
            if ticked {
                self.collect();
            }
        }
    }

    /// Queues an event for each topic that changed.
    fn collect(&mut self) {
        let dashboard = &self.app.dashboard;
        let version = dashboard.version();
        if (self.topics.status || self.topics.graph) && self.version != Some(version) {
            self.version = Some(version);
            let (status, graph) = {
                let model = dashboard.model();
                let status = self
                    .topics
                    .status
                    .then(|| model.snapshot(PAGE_STREAM_ENTRIES));
                let graph = if self.topics.graph {
                    let now = model.graph_versions();
                    let last = self.graph.replace(now);
                    match last {
                        Some((structure, _)) if structure == now.0 => (Some(now) != last)
                            .then(|| event("graph-states", &model.graph_states())),
                        _ => Some(event("graph", &model.graph())),
                    }
                } else {
                    None
                };
                (status, graph)
            };
            if let Some(snapshot) = status {
                let status = ApiStatus {
                    snapshot,
                    event_loop_lag_s: self.app.lag_s(),
                };
                self.pending.extend(event("status", &status));
            }
            self.pending.extend(graph.flatten());
        }
        if self.topics.tasks {
            self.collect_tasks(version);
        }
    }

    fn collect_tasks(&mut self, version: u64) {
        let dashboard = &self.app.dashboard;
        let stream = dashboard.task_stream();
        let next_seq = stream.as_ref().map_or(0, |s| s.next_seq());
        if self.tasks_version == Some(version) && self.cursor == Some(next_seq) {
            return; // nothing new: the model is not even locked
        }
        self.tasks_version = Some(version);
        let limit = usize::try_from(TASKS_PER_EVENT).unwrap_or(usize::MAX);
        let workers = dashboard.model().workers();
        let lanes: Vec<(String, u32)> = workers
            .iter()
            .map(|w| (w.address.clone(), w.nthreads))
            .collect();
        let first_time = self.lanes.is_none();
        if !first_time && self.cursor == Some(next_seq) && self.lanes.as_ref() == Some(&lanes) {
            return;
        }
        // The newest records only: a reader never falls behind the stream.
        let newest = next_seq.saturating_sub(TASKS_PER_EVENT);
        let since = self.cursor.unwrap_or(newest).max(newest);
        let skipped = self.cursor.map_or(0, |c| since.saturating_sub(c));
        let page = task_stream_page(stream.as_ref(), since, limit);
        self.cursor = Some(page.next);
        self.lanes = Some(lanes);
        let id = page.next.to_string();
        let tasks = TasksEvent {
            page,
            skipped,
            workers,
        };
        if let Some(e) = event("tasks", &tasks) {
            self.pending.push_back(e.id(id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_parse_and_refuse_unknown_ones() {
        let t = parse_topics(None).unwrap();
        assert!(t.status && !t.graph && !t.tasks);
        let t = parse_topics(Some("interval=50&topics=graph,tasks")).unwrap();
        assert!(!t.status && t.graph && t.tasks);
        let e = parse_topics(Some("topics=status,nope")).unwrap_err();
        assert!(
            e.contains("\"nope\"") && e.contains("status,graph,tasks"),
            "{e}"
        );
        assert!(parse_topics(Some("topics=")).is_err());
    }
}
