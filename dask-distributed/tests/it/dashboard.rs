//! Scheduler plugins and the dashboard: plugins driven by the state machine,
//! then the HTTP endpoints of a real LocalCluster's dashboard, their numbers
//! checked against the graph that was computed.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use dask_core::op::fn_op;
use dask_core::{Arg, Graph, Key, Task, Value};
use dask_distributed::dashboard::{self, Dashboard};
use dask_distributed::scheduler::plugin::{SchedulerPlugin, TaskTransition};
use dask_distributed::scheduler::state::{
    Action, Event, Priority, SchedulerState, Status, TaskSpec, WorkerId,
};
use dask_distributed::{Client, Error, LocalCluster};
use dask_sync_scheduler::SyncScheduler;

// ---- plugins on the state machine ----

fn spec(name: &str, deps: &[&str]) -> TaskSpec {
    TaskSpec {
        key: Key::named(name),
        dependencies: deps.iter().map(|d| Key::named(*d)).collect(),
        run_spec: Bytes::new(),
        priority: Priority::default(),
        retries: 0,
        restrictions: None,
    }
}

/// A transition as recorded: key, from, to, worker.
type Seen = (Key, Status, Status, Option<WorkerId>);

/// Records every hook call.
#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<Seen>>>,
    workers: Arc<Mutex<Vec<String>>>,
}

impl SchedulerPlugin for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }
    fn on_task_transition(&mut self, t: &TaskTransition<'_>) {
        self.seen
            .lock()
            .unwrap()
            .push((t.key.clone(), t.from, t.to, t.worker));
    }
    fn add_worker(&mut self, worker: WorkerId, nthreads: u32) {
        self.workers
            .lock()
            .unwrap()
            .push(format!("add {worker} {nthreads}"));
    }
    fn remove_worker(&mut self, worker: WorkerId) {
        self.workers
            .lock()
            .unwrap()
            .push(format!("remove {worker}"));
    }
}

/// Checks that each key's transitions form one chain: created from
/// forgotten, each `from` the previous `to`, nothing after forgotten.
#[derive(Clone, Default)]
struct Chain {
    last: Arc<Mutex<BTreeMap<Key, Status>>>,
    broken: Arc<Mutex<Vec<String>>>,
}

impl SchedulerPlugin for Chain {
    fn name(&self) -> &str {
        "chain"
    }
    fn on_task_transition(&mut self, t: &TaskTransition<'_>) {
        let mut last = self.last.lock().unwrap();
        let before = last.get(t.key).copied().unwrap_or(Status::Forgotten);
        if before != t.from {
            self.broken.lock().unwrap().push(format!(
                "{}: told {:?} -> {:?} ({}) after {:?}",
                t.key, t.from, t.to, t.why, before
            ));
        }
        if t.to == Status::Forgotten {
            last.remove(t.key);
        } else {
            last.insert(t.key.clone(), t.to);
        }
    }
}

impl Chain {
    /// Breaks seen, and keys whose last state differs from the scheduler's.
    fn problems(&self, state: &SchedulerState) -> Vec<String> {
        let mut problems = self.broken.lock().unwrap().clone();
        let last = self.last.lock().unwrap();
        for ts in state.tasks() {
            if last.get(&ts.key) != Some(&ts.status) {
                problems.push(format!(
                    "{}: last told {:?}, is {:?}",
                    ts.key,
                    last.get(&ts.key),
                    ts.status
                ));
            }
        }
        if last.len() != state.tasks().count() {
            problems.push(format!(
                "{} keys told alive, {} are",
                last.len(),
                state.tasks().count()
            ));
        }
        problems
    }
}

/// Panics on its `n`th transition.
struct Bomb {
    n: usize,
}

impl SchedulerPlugin for Bomb {
    fn name(&self) -> &str {
        "bomb"
    }
    fn on_task_transition(&mut self, _t: &TaskTransition<'_>) {
        self.n -= 1;
        if self.n == 0 {
            panic!("intentional panic in a plugin");
        }
    }
}

/// Runs a diamond a -> (b, c) -> d on two simulated workers until every
/// Compute is answered; returns the state and how many computes were sent.
fn run_diamond(state: &mut SchedulerState) -> usize {
    let mut actions = state
        .handle(Event::AddWorker {
            worker: 1,
            nthreads: 1,
        })
        .unwrap();
    actions.extend(
        state
            .handle(Event::AddWorker {
                worker: 2,
                nthreads: 1,
            })
            .unwrap(),
    );
    actions.extend(
        state
            .handle(Event::UpdateGraph {
                client: 7,
                tasks: vec![
                    spec("a", &[]),
                    spec("b", &["a"]),
                    spec("c", &["a"]),
                    spec("d", &["b", "c"]),
                ],
                wanted: vec![Key::named("d")],
            })
            .unwrap(),
    );
    let mut computes = 0;
    while let Some(action) = actions.pop() {
        if let Action::Compute { worker, key, .. } = action {
            computes += 1;
            actions.extend(
                state
                    .handle(Event::TaskFinished {
                        worker,
                        key,
                        nbytes: 8,
                    })
                    .unwrap(),
            );
        }
    }
    computes
}

#[test]
fn plugins_see_every_transition_and_worker() {
    let rec = Recorder::default();
    let chain = Chain::default();
    let mut state = SchedulerState::new();
    state.add_plugin(Box::new(rec.clone()));
    state.add_plugin(Box::new(chain.clone()));
    let computes = run_diamond(&mut state);
    assert_eq!(computes, 4);
    state.handle(Event::RemoveWorker { worker: 2 }).unwrap();
    assert_eq!(chain.problems(&state), Vec::<String>::new());
    let seen = rec.seen.lock().unwrap().clone();
    // Each task was created (from forgotten) once.
    let created = seen
        .iter()
        .filter(|(_, from, _, _)| *from == Status::Forgotten);
    assert_eq!(created.count(), 4);
    // Each computed task went processing -> memory once, on the worker it ran on.
    let finished: Vec<_> = seen
        .iter()
        .filter(|(_, from, to, _)| *from == Status::Processing && *to == Status::Memory)
        .collect();
    assert_eq!(finished.len(), computes);
    assert!(finished.iter().all(|(_, _, _, w)| matches!(w, Some(1 | 2))));
    // The last state each key was reported in is its state in the scheduler.
    let mut last = BTreeMap::new();
    for (key, _, to, _) in &seen {
        last.insert(key.to_string(), *to);
    }
    for name in ["a", "b", "c", "d"] {
        let key = Key::named(name);
        let now = state.task(&key).map_or(Status::Forgotten, |t| t.status);
        assert_eq!(last[&key.to_string()], now, "{name}");
    }
    assert_eq!(
        *rec.workers.lock().unwrap(),
        vec!["add 1 1", "add 2 1", "remove 2"]
    );
    // A released task sent straight to processing goes through waiting: two
    // transitions, each told once.
    let d = Key::named("d");
    state.transition(&d, Status::Released, "test").unwrap();
    state.transition(&d, Status::Processing, "test").unwrap();
    assert_eq!(state.task(&d).unwrap().status, Status::Processing);
    assert_eq!(chain.problems(&state), Vec::<String>::new());
    let told: Vec<(Status, Status)> = rec.seen.lock().unwrap()[seen.len()..]
        .iter()
        .map(|(_, from, to, _)| (*from, *to))
        .collect();
    use Status::*;
    assert_eq!(
        told,
        [
            (Memory, Released),
            (Released, Waiting),
            (Waiting, Processing)
        ]
    );
}

#[test]
fn a_panicking_plugin_is_disabled_and_the_scheduler_goes_on() {
    let rec = Recorder::default();
    let mut state = SchedulerState::new();
    state.add_plugin(Box::new(Bomb { n: 3 }));
    state.add_plugin(Box::new(rec.clone()));
    let computes = run_diamond(&mut state);
    assert_eq!(computes, 4);
    assert_eq!(
        state.task(&Key::named("d")).map(|t| t.status),
        Some(Status::Memory)
    );
    assert_eq!(state.plugins().disabled(), vec!["bomb".to_owned()]);
    assert_eq!(
        state.plugins().names(),
        vec!["bomb".to_owned(), "recorder".to_owned()]
    );
    let finished = rec
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, _, to, _)| *to == Status::Memory)
        .count();
    assert_eq!(finished, 4, "the other plugin still saw everything");
}

#[test]
fn the_dashboard_model_counts_a_simulated_run() {
    let dash = Dashboard::new();
    let mut state = SchedulerState::new();
    state.add_plugin(dash.plugin());
    let computes = run_diamond(&mut state);
    let s = dash.snapshot();
    assert_eq!(s.tasks_seen, 4);
    assert_eq!(s.tasks_done, computes as u64);
    assert_eq!(s.finished_total, computes as u64);
    let in_memory = state.tasks().filter(|t| t.status == Status::Memory).count();
    assert_eq!(s.tasks.memory, in_memory as u64);
    assert_eq!(s.stream.len(), computes);
    let by_worker: u64 = s.workers.iter().map(|w| w.tasks_done).sum();
    assert_eq!(by_worker, computes as u64);
    assert_eq!(s.workers.len(), 2);
    // One group per key name here ("a", "b", ...): group = key prefix.
    let groups: BTreeSet<_> = s.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(groups, BTreeSet::from(["a", "b", "c", "d"]));
}

// ---- HTTP ----

/// A response: status code, headers (lower-case names), body.
pub(super) struct Response {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

/// GET `path` from `addr` over plain HTTP/1.1 (bounded by timeouts).
pub(super) fn get(addr: &str, path: &str) -> Response {
    request("GET", addr, path, None)
}

/// One HTTP/1.1 request with an optional JSON body; reads Content-Length and
/// chunked bodies; every read and write is bounded by a timeout.
pub(super) fn request(method: &str, addr: &str, path: &str, json: Option<&str>) -> Response {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let body = json.unwrap_or("");
    let content = if json.is_some() {
        format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        )
    } else {
        String::new()
    };
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{content}\r\n{body}"
    )
    .unwrap();
    // Read the head, then exactly the body (a peer may keep the connection open).
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut buf).expect("read the response");
        assert!(n > 0, "connection closed before the end of the headers");
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8(raw[..head_end].to_vec()).expect("utf-8 head");
    let mut rest = raw[head_end + 4..].to_vec();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().to_owned();
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers.get("transfer-encoding").map(String::as_str) == Some("chunked");
    let body = if let Some(len) = headers.get("content-length") {
        let len: usize = len.parse().unwrap();
        while rest.len() < len {
            let n = stream.read(&mut buf).expect("read the body");
            assert!(n > 0, "connection closed in the body");
            rest.extend_from_slice(&buf[..n]);
        }
        String::from_utf8(rest[..len].to_vec()).expect("utf-8 body")
    } else if chunked {
        while !rest.ends_with(b"0\r\n\r\n") {
            let n = stream.read(&mut buf).expect("read the body");
            assert!(n > 0, "connection closed in the body");
            rest.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8(rest).expect("utf-8 body");
        let mut out = String::new();
        let mut rest = text.as_str();
        loop {
            let (size, after) = rest.split_once("\r\n").expect("chunk size");
            let size = usize::from_str_radix(size.trim(), 16).expect("hex chunk size");
            if size == 0 {
                break;
            }
            out.push_str(&after[..size]);
            rest = &after[size + 2..];
        }
        out
    } else {
        stream.read_to_end(&mut rest).expect("read the body");
        String::from_utf8(rest).expect("utf-8 body")
    };
    Response {
        status: status.parse().unwrap(),
        headers,
        body,
    }
}

/// One sample of the Prometheus text format.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A small parser of the Prometheus text exposition format (0.0.4): HELP and
/// TYPE comments, samples with optional labels. Refuses what it cannot read
/// and samples whose family has no TYPE line before them.
fn parse_prometheus(text: &str) -> Result<Vec<Sample>, String> {
    fn valid_name(s: &str) -> bool {
        let mut chars = s.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }
    let mut types = BTreeMap::new();
    let mut samples = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let at = |m: &str| format!("line {}: {m}: {line:?}", n + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("TYPE"), Some(name), Some(kind)) => {
                    if !valid_name(name)
                        || !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind)
                    {
                        return Err(at("bad TYPE"));
                    }
                    if types.insert(name.to_owned(), kind.to_owned()).is_some() {
                        return Err(at("second TYPE for a family"));
                    }
                }
                (Some("HELP"), Some(name), _) if valid_name(name) => {}
                _ => return Err(at("bad comment")),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').ok_or_else(|| at("no value"))?;
        let value: f64 = value.parse().map_err(|_| at("bad value"))?;
        let (name, labels) = match series.split_once('{') {
            None => (series, BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest
                    .strip_suffix('}')
                    .ok_or_else(|| at("unclosed labels"))?;
                let mut labels = BTreeMap::new();
                for pair in body.split(',').filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once('=').ok_or_else(|| at("bad label"))?;
                    let v = v
                        .strip_prefix('"')
                        .and_then(|v| v.strip_suffix('"'))
                        .ok_or_else(|| at("unquoted label value"))?;
                    if !valid_name(k) {
                        return Err(at("bad label name"));
                    }
                    labels.insert(k.to_owned(), v.to_owned());
                }
                (name, labels)
            }
        };
        if !valid_name(name) {
            return Err(at("bad metric name"));
        }
        if !types.contains_key(name) {
            return Err(at("sample before its TYPE"));
        }
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    Ok(samples)
}

#[test]
fn the_prometheus_parser_refuses_malformed_text() {
    assert!(parse_prometheus("# TYPE x counter\nx 3\n").is_ok());
    assert!(parse_prometheus("x 3\n").is_err(), "no TYPE");
    assert!(parse_prometheus("# TYPE x counter\nx three\n").is_err());
    assert!(parse_prometheus("# TYPE x gauge\nx{a=b} 1\n").is_err());
    assert!(parse_prometheus("# TYPE x gauge\nx{a=\"b\" 1\n").is_err());
    assert!(parse_prometheus("# TYPE 9x gauge\n").is_err());
}

fn one(samples: &[Sample], name: &str) -> f64 {
    let found: Vec<_> = samples.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "one sample of {name}");
    found[0].value
}

/// A two-group graph built here: `inc` tasks (roots) and `total` tasks
/// reading three of them each. Returns the graph and its outputs.
pub(super) fn two_group_graph(n_total: usize, pause: Duration) -> (Graph, Vec<Key>) {
    let inc = fn_op(move |x: u64| {
        std::thread::sleep(pause);
        x + 1
    });
    let total = fn_op(|xs: Vec<Value>| {
        xs.iter()
            .map(|v| *v.downcast_ref::<u64>().unwrap())
            .sum::<u64>()
    });
    let mut g = Graph::new();
    let mut outputs = Vec::new();
    for j in 0..n_total as u64 {
        let mut deps = Vec::new();
        for i in 3 * j..3 * j + 3 {
            let k = Key::new("inc-5eed0001", [i]);
            g.insert(k.clone(), Task::new(inc.clone(), vec![Arg::value(i)]));
            deps.push(Arg::Key(k));
        }
        let k = Key::new("total-5eed0002", [j]);
        g.insert(k.clone(), Task::new(total.clone(), vec![Arg::List(deps)]));
        outputs.push(k);
    }
    (g, outputs)
}

fn dashboard_cluster(n_workers: usize) -> Client {
    let cluster = LocalCluster::builder()
        .n_workers(n_workers)
        .threads_per_worker(2)
        .dashboard_port(0)
        .start()
        .unwrap();
    Client::with_cluster(cluster).unwrap()
}

#[test]
fn metrics_and_api_match_the_computation() {
    let client = dashboard_cluster(2);
    let cluster = client.cluster().unwrap();
    let addr = cluster.dashboard_address().unwrap();
    let (graph, outputs) = two_group_graph(12, Duration::ZERO);
    let got = client.compute_graph(&graph, &outputs).unwrap();
    let want = dask_core::Scheduler::compute(&SyncScheduler, &graph, &outputs).unwrap();
    let as_u64 = |vs: &[Value]| -> Vec<u64> {
        vs.iter()
            .map(|v| *v.downcast_ref::<u64>().unwrap())
            .collect()
    };
    assert_eq!(as_u64(&got), as_u64(&want));
    let n_tasks = graph.len();

    let metrics = get(&addr, "/metrics");
    assert_eq!(metrics.status, 200);
    assert!(metrics.headers["content-type"].starts_with("text/plain; version=0.0.4"));
    let samples = parse_prometheus(&metrics.body).unwrap();
    assert_eq!(
        one(&samples, "dask_scheduler_tasks_finished_total"),
        n_tasks as f64
    );
    assert_eq!(
        one(&samples, "dask_scheduler_tasks_seen_total"),
        n_tasks as f64
    );
    assert_eq!(one(&samples, "dask_scheduler_tasks_erred_total"), 0.0);
    assert_eq!(one(&samples, "dask_scheduler_workers"), 2.0);
    assert_eq!(
        one(&samples, "dask_scheduler_threads"),
        cluster.total_threads() as f64
    );
    // Every task seen is in exactly one state (forgotten ones counted apart).
    let live: f64 = samples
        .iter()
        .filter(|s| s.name == "dask_scheduler_tasks")
        .map(|s| s.value)
        .sum();
    let forgotten = one(&samples, "dask_scheduler_tasks_forgotten_total");
    assert_eq!(live + forgotten, n_tasks as f64);
    let states: BTreeSet<_> = samples
        .iter()
        .filter(|s| s.name == "dask_scheduler_tasks")
        .map(|s| s.labels["state"].clone())
        .collect();
    assert!(states.contains("memory") && states.contains("processing"));
    let lag = one(&samples, "dask_scheduler_event_loop_lag_seconds");
    assert!(lag >= 0.0);

    let api = get(&addr, "/api/status");
    assert_eq!(api.status, 200);
    assert!(api.headers["content-type"].starts_with("application/json"));
    let json: serde_json::Value = serde_json::from_str(&api.body).unwrap();
    assert_eq!(json["tasks_done"], n_tasks as u64);
    assert_eq!(json["tasks_seen"], n_tasks as u64);
    let mut groups = BTreeMap::new();
    for g in json["groups"].as_array().unwrap() {
        groups.insert(
            g["name"].as_str().unwrap().to_owned(),
            (g["done"].as_u64().unwrap(), g["total"].as_u64().unwrap()),
        );
    }
    // The oracle: the graph's keys, counted by name.
    let count = |prefix: &str| {
        graph
            .keys()
            .filter(|k| k.name().starts_with(prefix))
            .count() as u64
    };
    let expected = BTreeMap::from([
        ("inc".to_owned(), (count("inc-"), count("inc-"))),
        ("total".to_owned(), (count("total-"), count("total-"))),
    ]);
    assert_eq!(groups, expected);
    let addrs: BTreeSet<String> = json["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["address"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        addrs,
        cluster.worker_addrs().into_iter().collect::<BTreeSet<_>>()
    );
    let done: u64 = json["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["tasks_done"].as_u64().unwrap())
        .sum();
    assert_eq!(done, n_tasks as u64);
    assert_eq!(json["stream"].as_array().unwrap().len(), n_tasks);

    let workers = get(&addr, "/api/workers");
    let workers: serde_json::Value = serde_json::from_str(&workers.body).unwrap();
    assert_eq!(workers.as_array().unwrap().len(), 2);
    let info = get(&addr, "/info/workers");
    assert_eq!(info.status, 200);
    for a in cluster.worker_addrs() {
        assert!(info.body.contains(&a), "{a} missing from /info/workers");
    }
}

#[test]
fn health_pages_and_unknown_paths() {
    let client = dashboard_cluster(1);
    let addr = client.cluster().unwrap().dashboard_address().unwrap();
    let health = get(&addr, "/health");
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    let page = get(&addr, "/status");
    assert_eq!(page.status, 200);
    assert!(page.headers["content-type"].starts_with("text/html"));
    assert!(
        !page.body.contains("http://") && !page.body.contains("https://"),
        "nothing is fetched from the internet"
    );
    // Both pages load the shared scaffold once, then their own script; no
    // script polls (updates come from the push stream).
    for (path, own) in [("/status", "dashboard.js"), ("/tasks", "tasks.js")] {
        let page = get(&addr, path);
        assert_eq!(page.status, 200);
        let scripts: Vec<&str> = page
            .body
            .split("<script src=\"")
            .skip(1)
            .map(|s| s.split('"').next().unwrap())
            .collect();
        assert_eq!(scripts.first(), Some(&"/static/common.js"), "{path}");
        assert_eq!(scripts.last(), Some(&format!("/static/{own}").as_str()));
        assert_eq!(
            scripts.iter().filter(|s| s.ends_with("common.js")).count(),
            1
        );
        for script in scripts {
            let js = get(&addr, script);
            assert_eq!(js.status, 200, "{script}");
            assert!(js.headers["content-type"].starts_with("text/javascript"));
            assert!(!js.body.contains("fetch("), "{script} polls");
            assert!(
                !js.body.contains("https://"),
                "{script} loads from the internet"
            );
        }
    }
    let common = get(&addr, "/static/common.js");
    assert!(common.body.contains("new EventSource(\"/api/events"));
    assert_eq!(get(&addr, "/static/dashboard.css").status, 200);
    let root = get(&addr, "/");
    assert_eq!(
        (root.status, root.headers["location"].as_str()),
        (307, "/status")
    );
    let missing = get(&addr, "/nope");
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("/status"), "{}", missing.body);
}

#[test]
fn a_taken_dashboard_port_falls_back_to_a_free_one() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let cluster = LocalCluster::builder()
        .dashboard_port(port)
        .threads_per_worker(1)
        .start()
        .unwrap();
    let addr = cluster.dashboard_address().unwrap();
    let moved: std::net::SocketAddr = addr.parse().unwrap();
    assert_ne!(moved.port(), port);
    assert_eq!(get(&addr, "/health").status, 200);
    let link = cluster.dashboard_link().unwrap();
    assert_eq!(link, format!("http://{addr}/status"));
    assert!(cluster.to_string().contains(&link), "{cluster}");
    drop(taken);
}

#[test]
fn with_8787_taken_the_default_dashboard_moves() {
    // Hold 8787 ourselves: another cluster of this test binary may hold it
    // for a while, and release it at any moment. A port still held by someone
    // else after the wait is taken for good, which is as good.
    let start = std::time::Instant::now();
    let _held = loop {
        match std::net::TcpListener::bind(("127.0.0.1", dashboard::DEFAULT_DASHBOARD_PORT)) {
            Ok(l) => break Some(l),
            Err(_) if start.elapsed() < Duration::from_secs(60) => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(_) => break None,
        }
    };
    let cluster = LocalCluster::builder()
        .threads_per_worker(1)
        .start()
        .unwrap();
    let addr: std::net::SocketAddr = cluster.dashboard_address().unwrap().parse().unwrap();
    assert_ne!(addr.port(), dashboard::DEFAULT_DASHBOARD_PORT);
    assert_eq!(get(&addr.to_string(), "/health").status, 200);
    assert!(cluster
        .to_string()
        .contains(&format!("dashboard=http://{addr}/status")));
}

#[test]
fn serve_says_where_it_moved_and_refuses_bad_hosts() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = taken.local_addr().unwrap().port();
        let d = Dashboard::new();
        let handle = dashboard::serve(&d, "127.0.0.1", port).await.unwrap();
        assert_eq!(handle.moved_from(), Some(port));
        assert_ne!(handle.addr().port(), port);
        handle.shutdown();
        let err = dashboard::serve(&d, "no such host!", 0)
            .await
            .err()
            .unwrap();
        assert!(matches!(err, Error::Dashboard { .. }), "{err:?}");
        assert!(err.to_string().contains("no such host!"), "{err}");
    });
}

#[test]
fn a_cluster_without_dashboard_has_no_address() {
    let cluster = LocalCluster::builder()
        .no_dashboard()
        .threads_per_worker(1)
        .start()
        .unwrap();
    assert_eq!(cluster.dashboard_address(), None);
    assert!(!cluster.to_string().contains("dashboard"));
}

// ---- the model against the state machine, under random runs ----

/// xorshift64*: reproducible by seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

/// The dashboard's counts and worker table against the state machine's own
/// tasks and workers (the oracle), after every event.
fn compare(dash: &Dashboard, state: &SchedulerState, seed: u64, step: usize) {
    let s = dash.snapshot();
    let count = |st: Status| state.tasks().filter(|t| t.status == st).count() as u64;
    let want = (
        count(Status::Released),
        count(Status::Waiting),
        count(Status::NoWorker),
        count(Status::Queued),
        count(Status::Processing),
        count(Status::Memory),
        count(Status::Erred),
    );
    let t = s.tasks;
    let got = (
        t.released,
        t.waiting,
        t.no_worker,
        t.queued,
        t.processing,
        t.memory,
        t.erred,
    );
    assert_eq!(got, want, "seed {seed} step {step}: counts by state");
    assert_eq!(
        s.tasks_seen - t.forgotten,
        state.tasks().count() as u64,
        "seed {seed} step {step}: live tasks"
    );
    let workers: Vec<(WorkerId, u64)> = state
        .workers()
        .iter()
        .map(|(id, w)| (*id, w.processing.len() as u64))
        .collect();
    let shown: Vec<(WorkerId, u64)> = s.workers.iter().map(|w| (w.id, w.in_flight)).collect();
    assert_eq!(shown, workers, "seed {seed} step {step}: workers in flight");
    // No replicas here: each value is held where it was computed.
    let held: Vec<(WorkerId, u64)> = state
        .workers()
        .iter()
        .map(|(id, w)| (*id, w.nbytes))
        .collect();
    let shown: Vec<(WorkerId, u64)> = s.workers.iter().map(|w| (w.id, w.memory_bytes)).collect();
    assert_eq!(shown, held, "seed {seed} step {step}: bytes held");
    for g in &s.groups {
        assert!(g.done <= g.total, "seed {seed} step {step}: group {g:?}");
    }
}

#[test]
fn dashboard_counts_match_the_state_machine_in_random_runs() {
    use dask_distributed::scheduler::state::TaskError;
    for seed in 1..=60u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let n = 1 + rng.below(80) as usize;
        let key = |i: usize| Key::new(if i.is_multiple_of(2) { "even" } else { "odd" }, [i as u64]);
        let deps: Vec<Vec<usize>> = (0..n)
            .map(|i| {
                let mut d: Vec<usize> = (0..rng.below(4))
                    .filter(|_| i > 0)
                    .map(|_| rng.below(i as u64) as usize)
                    .collect();
                d.sort_unstable();
                d.dedup();
                d
            })
            .collect();
        // Every task is needed (sinks are wanted), as after the client's cull.
        let mut has_dependent = vec![false; n];
        deps.iter().flatten().for_each(|&d| has_dependent[d] = true);
        let mut wanted: Vec<Key> = (0..n)
            .filter(|&i| !has_dependent[i] || rng.below(5) == 0)
            .map(key)
            .collect();
        let specs = (0..n)
            .map(|i| TaskSpec {
                key: key(i),
                dependencies: deps[i].iter().map(|&d| key(d)).collect(),
                run_spec: Bytes::new(),
                priority: Priority {
                    order: i as u64,
                    ..Default::default()
                },
                retries: 0,
                restrictions: None,
            })
            .collect();
        let dash = Dashboard::new();
        let chain = Chain::default();
        let mut state = SchedulerState::new()
            .with_allowed_failures(1000)
            .with_work_stealing(false);
        state.add_plugin(dash.plugin());
        state.add_plugin(Box::new(chain.clone()));
        let mut running: BTreeMap<WorkerId, Vec<Key>> = BTreeMap::new();
        let mut next_worker = 1;
        let mut events = Vec::new();
        for _ in 0..1 + rng.below(3) {
            running.insert(next_worker, Vec::new());
            events.push(Event::AddWorker {
                worker: next_worker,
                nthreads: 1 + rng.below(3) as u32,
            });
            next_worker += 1;
        }
        events.push(Event::UpdateGraph {
            client: 1,
            tasks: specs,
            wanted: wanted.clone(),
        });
        for step in 0..20_000 {
            for event in events.drain(..) {
                for action in state.handle(event).unwrap() {
                    match action {
                        Action::Compute { worker, key, .. } => {
                            running.get_mut(&worker).unwrap().push(key)
                        }
                        Action::Free { worker, keys } => {
                            if let Some(r) = running.get_mut(&worker) {
                                r.retain(|k| !keys.contains(k));
                            }
                        }
                        Action::Report { .. } => {}
                        Action::Steal { .. } => panic!("work stealing is off here"),
                    }
                }
                compare(&dash, &state, seed, step);
                let problems = chain.problems(&state);
                assert!(
                    problems.is_empty(),
                    "seed {seed} step {step}: {problems:#?}"
                );
            }
            let busy: Vec<WorkerId> = running
                .iter()
                .filter(|(_, r)| !r.is_empty())
                .map(|(w, _)| *w)
                .collect();
            if busy.is_empty() {
                break;
            }
            let worker = busy[rng.below(busy.len() as u64) as usize];
            let roll = rng.below(100);
            if roll < 4 && running.len() > 1 {
                running.remove(&worker);
                events.push(Event::RemoveWorker { worker });
            } else if roll < 8 {
                running.insert(next_worker, Vec::new());
                events.push(Event::AddWorker {
                    worker: next_worker,
                    nthreads: 2,
                });
                next_worker += 1;
            } else if roll < 10 && !wanted.is_empty() {
                let k = wanted.swap_remove(rng.below(wanted.len() as u64) as usize);
                events.push(Event::ReleaseKeys {
                    client: 1,
                    keys: vec![k],
                });
            } else {
                let r = running.get_mut(&worker).unwrap();
                let key = r.remove(rng.below(r.len() as u64) as usize);
                events.push(if roll < 13 {
                    Event::TaskErred {
                        worker,
                        key: key.clone(),
                        error: TaskError {
                            key,
                            op: "op".into(),
                            message: "failed on purpose".into(),
                        },
                    }
                } else {
                    Event::TaskFinished {
                        worker,
                        key,
                        nbytes: rng.below(1000),
                    }
                });
            }
        }
    }
}

/// A plugin that applies every transition to its own model, with no reader
/// about: the oracle for the dashboard read from another thread.
struct Immediate(Arc<Mutex<dashboard::model::DashboardModel>>);

impl SchedulerPlugin for Immediate {
    fn name(&self) -> &str {
        "immediate-model"
    }
    fn on_task_transition(&mut self, t: &TaskTransition<'_>) {
        self.0.lock().unwrap().apply(t);
    }
    fn add_worker(&mut self, worker: WorkerId, nthreads: u32) {
        self.0.lock().unwrap().add_worker(worker, nthreads);
    }
    fn remove_worker(&mut self, worker: WorkerId) {
        self.0.lock().unwrap().remove_worker(worker);
    }
}

/// A snapshot as JSON without its clock readings (uptime, stream times).
fn timeless(s: &dashboard::model::Snapshot) -> serde_json::Value {
    let mut v = serde_json::to_value(s).unwrap();
    v["uptime_s"] = serde_json::Value::Null;
    for e in v["stream"].as_array_mut().unwrap() {
        e["start_s"] = serde_json::Value::Null;
        e["end_s"] = serde_json::Value::Null;
    }
    v
}

/// However often a page reads the dashboard from another thread meanwhile,
/// its model ends equal to one nobody read: counts, groups, workers, the
/// task stream's order and the graph view.
#[test]
fn readers_on_another_thread_leave_the_model_as_one_unread() {
    for (leaves, readers) in [(100u64, true), (20_000, false), (20_000, true)] {
        let dash = Dashboard::new();
        let oracle = Arc::new(Mutex::new(dashboard::model::DashboardModel::new()));
        let mut state = SchedulerState::new().with_work_stealing(false);
        state.add_plugin(dash.plugin());
        state.add_plugin(Box::new(Immediate(oracle.clone())));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = readers.then(|| {
            let (dash, stop) = (dash.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut reads = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = dash.snapshot();
                    let _ = dash.graph_states();
                    reads += 1;
                    std::thread::yield_now();
                }
                reads
            })
        });
        // A tree reduction of 2 * leaves - 1 tasks on two workers.
        let mut specs = Vec::new();
        let mut level: Vec<Key> = (0..leaves).map(|i| Key::new("leaf", [i])).collect();
        specs.extend(level.iter().map(|k| spec_of(k, &[])));
        let mut depth = 0;
        while level.len() > 1 {
            depth += 1;
            level = level
                .chunks(2)
                .enumerate()
                .map(|(j, pair)| {
                    let k = Key::new("sum", [depth, j as u64]);
                    specs.push(spec_of(&k, pair));
                    k
                })
                .collect();
        }
        let mut actions = Vec::new();
        for worker in [1, 2] {
            actions.extend(
                state
                    .handle(Event::AddWorker {
                        worker,
                        nthreads: 2,
                    })
                    .unwrap(),
            );
        }
        actions.extend(
            state
                .handle(Event::UpdateGraph {
                    client: 1,
                    tasks: specs,
                    wanted: level.clone(),
                })
                .unwrap(),
        );
        let mut ran = 0;
        while let Some(action) = actions.pop() {
            if let Action::Compute { worker, key, .. } = action {
                ran += 1;
                let event = if key.index() == [7] {
                    Event::TaskErred {
                        worker,
                        key: key.clone(),
                        error: dask_distributed::scheduler::state::TaskError {
                            key,
                            op: "op".into(),
                            message: "failed on purpose".into(),
                        },
                    }
                } else {
                    Event::TaskFinished {
                        worker,
                        key,
                        nbytes: 8,
                    }
                };
                actions.extend(state.handle(event).unwrap());
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(r) = reader {
            r.join().unwrap();
        }
        assert!(ran > 0, "{leaves} leaves: nothing ran");
        let oracle = oracle.lock().unwrap();
        let (got, want) = (dash.snapshot(), oracle.snapshot(usize::MAX));
        assert_eq!(
            got.transitions_total, want.transitions_total,
            "{leaves} leaves"
        );
        let mut want_page = oracle.snapshot(dashboard::PAGE_STREAM_ENTRIES);
        want_page.uptime_s = got.uptime_s;
        assert_eq!(timeless(&got), timeless(&want_page), "{leaves} leaves");
        assert_eq!(
            serde_json::to_value(dash.graph()).unwrap(),
            serde_json::to_value(oracle.graph()).unwrap(),
            "{leaves} leaves: graph view"
        );
        // Counts against the state machine itself.
        assert_eq!(
            got.tasks.erred + got.tasks.memory + got.tasks.released + got.tasks.waiting,
            state.tasks().count() as u64,
            "{leaves} leaves: live tasks"
        );
    }
}

fn spec_of(key: &Key, deps: &[Key]) -> TaskSpec {
    TaskSpec {
        key: key.clone(),
        dependencies: deps.to_vec(),
        run_spec: Bytes::new(),
        priority: Priority::default(),
        retries: 0,
        restrictions: None,
    }
}
