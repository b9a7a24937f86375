//! The dashboard's HTTP server (axum): pages, push stream ([`super::push`]),
//! JSON API, metrics, health.

use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::model::{GraphJson, Snapshot, WorkerJson};
use super::{metrics, push, Dashboard};
use crate::task_stream::TaskStream;
use crate::{Error, Result};

const STATUS_HTML: &str = include_str!("assets/status.html");
const COMMON_JS: &str = include_str!("assets/common.js");
const GRAPH_JS: &str = include_str!("assets/graph.js");
const DASHBOARD_JS: &str = include_str!("assets/dashboard.js");
const DASHBOARD_CSS: &str = include_str!("assets/dashboard.css");
const TASKS_HTML: &str = include_str!("assets/tasks.html");
const TASKS_JS: &str = include_str!("assets/tasks.js");

/// How often the event-loop lag is sampled.
const LAG_TICK: Duration = Duration::from_millis(250);
/// How long a shutdown waits for open connections before the server stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A running dashboard server; [`DashboardHandle::shutdown`] stops it.
pub struct DashboardHandle {
    addr: SocketAddr,
    moved_from: Option<u16>,
    server: JoinHandle<()>,
    lag: JoinHandle<()>,
    dashboard: Dashboard,
    stop: tokio::sync::watch::Sender<bool>,
    runtime: tokio::runtime::Handle,
}

impl DashboardHandle {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port asked for, when it was taken and the server moved to another.
    pub fn moved_from(&self) -> Option<u16> {
        self.moved_from
    }

    /// The status page's URL, `http://HOST:PORT/status`.
    pub fn link(&self) -> String {
        let host = if self.addr.ip().is_unspecified() {
            "127.0.0.1".to_owned()
        } else {
            self.addr.ip().to_string()
        };
        format!("http://{host}:{}/status", self.addr.port())
    }

    /// Stops serving: push streams end at once (a `closed` event), the
    /// server stops accepting and closes its connections (any still open
    /// after a few seconds are dropped).
    pub fn shutdown(&self) {
        self.dashboard.close();
        self.stop.send_replace(true);
        self.lag.abort();
        let server = self.server.abort_handle();
        // Not awaited: dropped with the runtime if that goes first.
        drop(self.runtime.spawn(async move {
            tokio::time::sleep(SHUTDOWN_GRACE).await;
            server.abort();
        }));
    }
}

#[derive(Clone)]
pub(super) struct App {
    pub(super) dashboard: Dashboard,
    /// Last event-loop lag sample, in nanoseconds.
    lag_ns: Arc<AtomicU64>,
    /// Push streams open.
    pub(super) streams: Arc<AtomicUsize>,
}

impl App {
    pub(super) fn lag_s(&self) -> f64 {
        self.lag_ns.load(Ordering::Relaxed) as f64 / 1e9
    }
}

/// Serves `dashboard` on `host:port` (port 0: any free port). When `port`
/// is taken, serves on a free port instead and says so on stderr. Must be
/// called inside a tokio runtime (the scheduler's).
pub async fn serve(dashboard: &Dashboard, host: &str, port: u16) -> Result<DashboardHandle> {
    let wanted = format!("{host}:{port}");
    let bind_error = |addr: &str, source| Error::Dashboard {
        addr: addr.to_owned(),
        source,
    };
    let (listener, moved_from) = match TcpListener::bind(&wanted).await {
        Ok(l) => (l, None),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && port != 0 => {
            let any = format!("{host}:0");
            let l = TcpListener::bind(&any)
                .await
                .map_err(|e| bind_error(&any, e))?;
            (l, Some(port))
        }
        Err(e) => return Err(bind_error(&wanted, e)),
    };
    let addr = listener.local_addr()?;
    let app = App {
        dashboard: dashboard.clone(),
        lag_ns: Arc::new(AtomicU64::new(0)),
        streams: Arc::new(AtomicUsize::new(0)),
    };
    let lag_ns = app.lag_ns.clone();
    let lag = tokio::spawn(async move {
        loop {
            let t0 = Instant::now();
            tokio::time::sleep(LAG_TICK).await;
            let late = t0.elapsed().saturating_sub(LAG_TICK);
            lag_ns.store(
                u64::try_from(late.as_nanos()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
        }
    });
    let router = router(app);
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(async move {
        let stopping = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(stopping)
            .await
        {
            eprintln!("dask-rs dashboard: server stopped: {e}");
        }
    });
    let handle = DashboardHandle {
        addr,
        moved_from,
        server,
        lag,
        dashboard: dashboard.clone(),
        stop,
        runtime: tokio::runtime::Handle::current(),
    };
    if let Some(port) = moved_from {
        eprintln!(
            "dashboard port {port} is already in use; the dashboard is at {} instead",
            handle.link()
        );
    }
    Ok(handle)
}

fn router(app: App) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::temporary("/status") }))
        .route("/status", get(|| async { Html(STATUS_HTML) }))
        .route(
            "/static/common.js",
            get(|| async { text("text/javascript; charset=utf-8", COMMON_JS) }),
        )
        .route(
            "/static/graph.js",
            get(|| async { text("text/javascript; charset=utf-8", GRAPH_JS) }),
        )
        .route(
            "/static/dashboard.js",
            get(|| async { text("text/javascript; charset=utf-8", DASHBOARD_JS) }),
        )
        .route(
            "/static/dashboard.css",
            get(|| async { text("text/css; charset=utf-8", DASHBOARD_CSS) }),
        )
        .route("/tasks", get(|| async { Html(TASKS_HTML) }))
        .route(
            "/static/tasks.js",
            get(|| async { text("text/javascript; charset=utf-8", TASKS_JS) }),
        )
        .route("/api/task-stream", get(api_task_stream))
        .route("/api/events", get(push::api_events))
        .route("/api/status", get(api_status))
        .route("/api/graph", get(api_graph))
        .route("/api/workers", get(api_workers))
        .route("/info/workers", get(info_workers))
        .route("/metrics", get(metrics))
        .route(
            "/health",
            get(|| async { text("text/plain; charset=utf-8", "ok\n") }),
        )
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                "no such page: the dashboard is at /status (JSON under /api/status, live updates \
                 on /api/events, /metrics, /health)\n",
            )
        })
        .with_state(app)
}

fn text(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// `/api/status`: the snapshot plus the event-loop lag.
#[derive(Serialize)]
pub(super) struct ApiStatus {
    #[serde(flatten)]
    pub(super) snapshot: Snapshot,
    pub(super) event_loop_lag_s: f64,
}

async fn api_status(State(app): State<App>) -> Json<ApiStatus> {
    Json(ApiStatus {
        snapshot: app.dashboard.snapshot(),
        event_loop_lag_s: app.lag_s(),
    })
}

/// `/api/graph`: the graph view of the current computation.
async fn api_graph(State(app): State<App>) -> Json<GraphJson> {
    Json(app.dashboard.model().graph())
}

/// Most records one `/api/task-stream` answer (or `tasks` event) carries.
pub(super) const API_STREAM_LIMIT: u64 = 5000;

/// `/api/task-stream?since=N&limit=M`: task-stream records from sequence
/// number `since` on (default: the newest `limit`), times in seconds since
/// the Unix epoch, with the server's clock (`now`).
#[derive(Serialize)]
pub(super) struct ApiTaskStream {
    /// Whether the scheduler records a task stream.
    enabled: bool,
    /// Oldest sequence number still held.
    first: u64,
    /// Ask `since=next` for newer records.
    pub(super) next: u64,
    /// Seconds since the Unix epoch, now.
    now: f64,
    records: Vec<ApiTaskRecord>,
}

#[derive(Serialize)]
struct ApiTaskRecord {
    seq: u64,
    key: String,
    prefix: String,
    worker: String,
    thread: u32,
    start: f64,
    stop: f64,
    ok: bool,
}

/// The value of `name` in a query string like `since=4&limit=10`.
pub(super) fn query_u64(query: Option<&str>, name: &str) -> Option<u64> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        if k == name {
            v.parse().ok()
        } else {
            None
        }
    })
}

async fn api_task_stream(State(app): State<App>, uri: axum::http::Uri) -> Json<ApiTaskStream> {
    let limit = query_u64(uri.query(), "limit")
        .unwrap_or(API_STREAM_LIMIT)
        .min(API_STREAM_LIMIT);
    let stream = app.dashboard.task_stream();
    let since = query_u64(uri.query(), "since").unwrap_or_else(|| {
        stream
            .as_ref()
            .map_or(0, |s| s.next_seq().saturating_sub(limit))
    });
    Json(task_stream_page(
        stream.as_ref(),
        since,
        usize::try_from(limit).unwrap_or(usize::MAX),
    ))
}

/// At most `limit` records of `stream` from `since` on, as the API serves them.
pub(super) fn task_stream_page(
    stream: Option<&TaskStream>,
    since: u64,
    limit: usize,
) -> ApiTaskStream {
    let Some(stream) = stream else {
        return ApiTaskStream {
            enabled: false,
            first: 0,
            next: 0,
            now: crate::task_stream::now(),
            records: Vec::new(),
        };
    };
    let page = stream.since(since, limit);
    ApiTaskStream {
        enabled: stream.capacity() > 0,
        first: page.first,
        next: page.next,
        now: crate::task_stream::now(),
        records: page
            .records
            .into_iter()
            .map(|r| ApiTaskRecord {
                seq: r.seq,
                key: r.key.to_string(),
                prefix: r.prefix,
                worker: r.worker,
                thread: r.thread,
                start: r.start,
                stop: r.stop,
                ok: r.status == crate::task_stream::RunStatus::Ok,
            })
            .collect(),
    }
}

async fn api_workers(State(app): State<App>) -> Json<Vec<WorkerJson>> {
    Json(app.dashboard.model().workers())
}

async fn metrics(State(app): State<App>) -> Response {
    let snapshot = app.dashboard.model().snapshot(0);
    let body = metrics::render(&snapshot, app.lag_s());
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], body).into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn info_workers(State(app): State<App>) -> Html<String> {
    let workers = app.dashboard.model().workers();
    let mut page = String::from(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>dask-rs workers</title>\
         <link rel=\"stylesheet\" href=\"/static/dashboard.css\"></head><body>\
         <h1>Workers</h1><p><a href=\"/status\">status</a></p><table id=\"workers\">\
         <tr><th>id</th><th>address</th><th>threads</th><th>in flight</th>\
         <th>memory (bytes)</th><th>tasks done</th></tr>",
    );
    for w in &workers {
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            w.id,
            escape(&w.address),
            w.nthreads,
            w.in_flight,
            w.memory_bytes,
            w.tasks_done
        );
    }
    let _ = write!(
        page,
        "</table><p>{} workers</p></body></html>",
        workers.len()
    );
    Html(page)
}
