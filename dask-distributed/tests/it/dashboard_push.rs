//! The dashboard's push stream (server-sent events on `/api/events`) read by
//! a plain HTTP client over TCP: events parse, their numbers follow a real
//! computation to the graph's own counts, the graph view has one node per
//! task with the graph's edges, streams end when the scheduler or the server
//! stops, and bad requests are refused. Also the graph view's limit, on the
//! state machine.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::Bytes;
use dask_core::{Arg, Graph, Key, Value};
use dask_distributed::dashboard::model::GRAPH_LIMIT;
use dask_distributed::dashboard::push::{MAX_PUSH_STREAMS, TASKS_PER_EVENT};
use dask_distributed::dashboard::{self, Dashboard};
use dask_distributed::scheduler::server::{self, SchedulerOptions};
use dask_distributed::scheduler::state::{Action, Event, Priority, SchedulerState, TaskSpec};
use dask_distributed::task_stream::TaskTiming;
use dask_distributed::{Client, LocalCluster};
use dask_sync_scheduler::SyncScheduler;
use serde_json::Value as Json;

use super::dashboard::{get, two_group_graph};

/// Bound on every read (not an assertion on speed: a hang fails, it does
/// not block the suite).
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// A server-sent events stream read over plain HTTP/1.1.
pub(super) struct EventStream {
    stream: TcpStream,
    /// Bytes of the chunked body not decoded yet.
    raw: Vec<u8>,
    /// Decoded body not split into events yet.
    text: String,
    ended: bool,
}

/// One event: name (`message` when unnamed), data, id.
#[derive(Debug, Clone)]
pub(super) struct Sse {
    pub name: String,
    pub data: String,
    pub id: Option<String>,
}

impl Sse {
    pub fn json(&self) -> Json {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("{} event is not JSON ({e}): {}", self.name, self.data))
    }
}

impl EventStream {
    /// Opens `path` on `addr`; returns the status code and, for 200, the
    /// stream (else the body, in the error).
    pub fn open(addr: &str, path: &str) -> Result<EventStream, (u16, String)> {
        Self::open_with(addr, path, "")
    }

    /// [`EventStream::open`] with more header lines (each ending in CRLF).
    pub fn open_with(addr: &str, path: &str, headers: &str) -> Result<EventStream, (u16, String)> {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n{headers}\r\n"
        )
        .unwrap();
        let mut raw = Vec::new();
        let mut buf = [0u8; 8192];
        let head_end = loop {
            if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let n = stream.read(&mut buf).expect("read the response head");
            assert!(n > 0, "connection closed before the end of the headers");
            raw.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8(raw[..head_end].to_vec()).unwrap();
        let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
        let lower = head.to_ascii_lowercase();
        let mut es = EventStream {
            stream,
            raw: raw[head_end + 4..].to_vec(),
            text: String::new(),
            ended: false,
        };
        if status != 200 {
            // Error answers carry a Content-Length body.
            let len: usize = lower
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            while es.raw.len() < len {
                let n = es.stream.read(&mut buf).expect("read the body");
                assert!(n > 0);
                es.raw.extend_from_slice(&buf[..n]);
            }
            return Err((status, String::from_utf8_lossy(&es.raw[..len]).into_owned()));
        }
        assert!(
            lower.contains("content-type: text/event-stream"),
            "not an event stream: {head}"
        );
        assert!(
            lower.contains("transfer-encoding: chunked"),
            "expected a chunked body: {head}"
        );
        Ok(es)
    }

    /// Decodes complete chunks; true once the last chunk was seen.
    fn dechunk(&mut self) -> bool {
        loop {
            let Some(line_end) = self.raw.windows(2).position(|w| w == b"\r\n") else {
                return false;
            };
            let size_text = std::str::from_utf8(&self.raw[..line_end]).unwrap();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
                .unwrap_or_else(|_| panic!("bad chunk size {size_text:?}"));
            if size == 0 {
                return true;
            }
            let start = line_end + 2;
            if self.raw.len() < start + size + 2 {
                return false;
            }
            self.text
                .push_str(std::str::from_utf8(&self.raw[start..start + size]).unwrap());
            assert_eq!(&self.raw[start + size..start + size + 2], b"\r\n");
            self.raw.drain(..start + size + 2);
        }
    }

    /// The next event (comments skipped); `None` once the stream ended.
    pub fn next(&mut self) -> Option<Sse> {
        let mut buf = [0u8; 16384];
        loop {
            if let Some(end) = self.text.find("\n\n") {
                let frame: String = self.text.drain(..end + 2).collect();
                let mut event = Sse {
                    name: "message".into(),
                    data: String::new(),
                    id: None,
                };
                let mut has_data = false;
                for line in frame.lines() {
                    if line.starts_with(':') || line.is_empty() {
                        continue;
                    }
                    let (field, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    match field {
                        "event" => event.name = value.to_owned(),
                        "data" => {
                            if has_data {
                                event.data.push('\n');
                            }
                            event.data.push_str(value);
                            has_data = true;
                        }
                        "id" => event.id = Some(value.to_owned()),
                        "retry" => {}
                        other => panic!("unknown SSE field {other:?} in {frame:?}"),
                    }
                }
                if has_data {
                    return Some(event);
                }
                continue;
            }
            if self.ended {
                assert!(self.text.trim().is_empty(), "a partial event at the end");
                return None;
            }
            if self.dechunk() {
                self.ended = true;
                continue;
            }
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    // Closed without the last chunk (the runtime went away).
                    self.ended = true;
                }
                Ok(n) => self.raw.extend_from_slice(&buf[..n]),
                Err(e) => panic!("reading the event stream: {e} (no event for {READ_TIMEOUT:?})"),
            }
        }
    }
}

/// The graph's dependencies, by key text (the oracle for the graph view's
/// edges).
fn dependencies(graph: &Graph) -> BTreeMap<String, BTreeSet<String>> {
    fn keys_in(arg: &Arg, out: &mut BTreeSet<String>) {
        match arg {
            Arg::Key(k) => {
                out.insert(k.to_string());
            }
            Arg::List(items) => items.iter().for_each(|a| keys_in(a, out)),
            Arg::Task(t) => t.args.iter().for_each(|a| keys_in(a, out)),
            Arg::Value(_) => {}
        }
    }
    graph
        .iter()
        .map(|(k, t)| {
            let mut deps = BTreeSet::new();
            t.args.iter().for_each(|a| keys_in(a, &mut deps));
            (k.to_string(), deps)
        })
        .collect()
}

/// The graph view as (key -> (state, dependency keys)).
fn view(graph: &Json) -> BTreeMap<String, (String, BTreeSet<String>)> {
    let nodes = graph["nodes"].as_array().unwrap();
    let key = |i: &Json| {
        nodes[i.as_u64().unwrap() as usize]["key"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    nodes
        .iter()
        .map(|n| {
            (
                n["key"].as_str().unwrap().to_owned(),
                (
                    n["state"].as_str().unwrap().to_owned(),
                    n["deps"].as_array().unwrap().iter().map(key).collect(),
                ),
            )
        })
        .collect()
}

#[test]
fn push_events_follow_a_computation() {
    let cluster = LocalCluster::builder()
        .n_workers(2)
        .threads_per_worker(2)
        .dashboard_port(0)
        .start()
        .unwrap();
    let addr = cluster.dashboard_address().unwrap();
    let n_workers = cluster.n_workers();
    let client = Client::with_cluster(cluster).unwrap();
    let mut events =
        EventStream::open(&addr, "/api/events?topics=status,graph,tasks&interval=30").unwrap();
    // Connected: the current state at once (nothing computed yet).
    let mut first = BTreeMap::new();
    while first.len() < 3 {
        let e = events.next().expect("the first events");
        first.insert(e.name.clone(), e.json());
    }
    assert_eq!(first["status"]["tasks_done"], 0);
    assert_eq!(first["graph"]["nodes"].as_array().unwrap().len(), 0);
    assert_eq!(first["tasks"]["records"].as_array().unwrap().len(), 0);

    let (graph, outputs) = two_group_graph(10, Duration::from_millis(5));
    let n = graph.len() as u64;
    let compute = {
        let (graph, outputs) = (graph.clone(), outputs.clone());
        std::thread::spawn(move || {
            let got = client.compute_graph(&graph, &outputs);
            (client, got)
        })
    };
    let mut done_seen = Vec::new();
    let mut graph_view: Option<Json> = None;
    let mut states_after: Option<Json> = None;
    let mut records = Vec::new();
    let mut last_id = 0u64;
    let mut last_status = Json::Null;
    loop {
        let e = events
            .next()
            .expect("the stream ended during the computation");
        let v = e.json();
        match e.name.as_str() {
            "status" => {
                done_seen.push(v["tasks_done"].as_u64().unwrap());
                last_status = v;
            }
            "graph" => {
                graph_view = Some(v);
                states_after = None;
            }
            "graph-states" => {
                let g = graph_view.as_ref().expect("states before a graph");
                assert_eq!(v["structure"], g["structure"], "states for another graph");
                states_after = Some(v);
            }
            "tasks" => {
                let id: u64 =
                    e.id.as_deref()
                        .expect("tasks events carry an id")
                        .parse()
                        .unwrap();
                assert_eq!(id, v["next"].as_u64().unwrap());
                assert!(id >= last_id);
                last_id = id;
                assert_eq!(v["skipped"], 0, "a small computation is followed whole");
                records.extend(v["records"].as_array().unwrap().iter().cloned());
                assert_eq!(v["workers"].as_array().unwrap().len(), n_workers);
            }
            other => panic!("unexpected event {other}: {}", e.data),
        }
        let finished = last_status["tasks_done"] == n
            && last_status["tasks_seen"] == n
            && records.len() as u64 == n
            && graph_view
                .as_ref()
                .is_some_and(|g| g["nodes"].as_array().unwrap().len() as u64 == n);
        if finished && compute.is_finished() {
            break;
        }
    }
    let (client, got) = compute.join().unwrap();
    let got = got.unwrap();
    let want = dask_core::Scheduler::compute(&SyncScheduler, &graph, &outputs).unwrap();
    let as_u64 = |vs: &[Value]| -> Vec<u64> {
        vs.iter()
            .map(|v| *v.downcast_ref::<u64>().unwrap())
            .collect()
    };
    assert_eq!(as_u64(&got), as_u64(&want));

    // Progress only rose; per group it matches the graph's keys.
    assert!(done_seen.windows(2).all(|w| w[0] <= w[1]), "{done_seen:?}");
    assert!(done_seen.len() >= 2, "more than one update: {done_seen:?}");
    let count = |p: &str| graph.keys().filter(|k| k.name().starts_with(p)).count() as u64;
    let groups: BTreeMap<String, (u64, u64)> = last_status["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap().to_owned(),
                (g["done"].as_u64().unwrap(), g["total"].as_u64().unwrap()),
            )
        })
        .collect();
    assert_eq!(
        groups,
        BTreeMap::from([
            ("inc".to_owned(), (count("inc-"), count("inc-"))),
            ("total".to_owned(), (count("total-"), count("total-"))),
        ])
    );
    // The task stream: each task once, numbered without gaps.
    let keys: BTreeSet<String> = graph.keys().map(|k| k.to_string()).collect();
    let recorded: BTreeSet<String> = records
        .iter()
        .map(|r| r["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(recorded, keys);
    let seqs: Vec<u64> = records.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (0..n).collect::<Vec<_>>());
    // The graph view: one node per task, the graph's own edges.
    let g = graph_view.unwrap();
    assert_eq!(g["too_big"], false);
    let drawn = view(&g);
    let edges: BTreeMap<String, BTreeSet<String>> = drawn
        .iter()
        .map(|(k, (_, d))| (k.clone(), d.clone()))
        .collect();
    assert_eq!(edges, dependencies(&graph));
    // Every state the view sent is a state name; after the computation the
    // last states came through graph-states (or the last full graph).
    let states: Vec<String> = match &states_after {
        Some(s) => s["states"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect(),
        None => drawn.values().map(|(s, _)| s.clone()).collect(),
    };
    assert_eq!(states.len() as u64, n);
    for s in &states {
        assert!(
            [
                "released",
                "waiting",
                "queued",
                "no-worker",
                "processing",
                "memory",
                "erred"
            ]
            .contains(&s.as_str()),
            "{s}"
        );
    }
    // The JSON API agrees with the pushed view.
    let api: Json = serde_json::from_str(&get(&addr, "/api/graph").body).unwrap();
    assert_eq!(view(&api).len() as u64, n);

    // The scheduler stops: the stream says so and ends.
    client.shutdown();
    let mut tail = Vec::new();
    while let Some(e) = events.next() {
        tail.push(e.name);
    }
    assert!(
        tail.last().is_none_or(|name| name == "closed"),
        "the stream ended after {tail:?}"
    );
}

/// A scheduler and its dashboard on a runtime of the test's own (no
/// workers), so each can be stopped alone.
fn scheduler_with_dashboard(
    runtime: &tokio::runtime::Runtime,
) -> (server::SchedulerHandle, dashboard::DashboardHandle) {
    runtime.block_on(async {
        let d = Dashboard::new();
        let s = server::start_full("127.0.0.1:0", SchedulerOptions::default(), vec![d.plugin()])
            .await
            .unwrap();
        d.attach_task_stream(s.task_stream());
        let h = dashboard::serve(&d, "127.0.0.1", 0).await.unwrap();
        (s, h)
    })
}

#[test]
fn streams_end_when_the_scheduler_or_the_server_stops() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // The scheduler stops, the HTTP server stays: the stream ends with
    // `closed`.
    let (scheduler, dash) = scheduler_with_dashboard(&runtime);
    let addr = dash.addr().to_string();
    let mut events = EventStream::open(&addr, "/api/events?topics=status,tasks").unwrap();
    let first = events.next().unwrap();
    assert_eq!(first.name, "status");
    scheduler.shutdown();
    let mut names = Vec::new();
    while let Some(e) = events.next() {
        names.push(e.name);
    }
    assert_eq!(
        names.last().map(String::as_str),
        Some("closed"),
        "{names:?}"
    );
    assert_eq!(
        get(&addr, "/health").status,
        200,
        "the server still answers"
    );
    dash.shutdown();

    // The server shuts down (scheduler running): the same.
    let (scheduler, dash) = scheduler_with_dashboard(&runtime);
    let addr = dash.addr().to_string();
    let mut events = EventStream::open(&addr, "/api/events?topics=graph").unwrap();
    assert_eq!(events.next().unwrap().name, "graph");
    dash.shutdown();
    let mut names = Vec::new();
    while let Some(e) = events.next() {
        names.push(e.name);
    }
    assert_eq!(names, vec!["closed".to_owned()]);
    scheduler.shutdown();
}

#[test]
fn bad_push_requests_are_refused_with_the_fix() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (scheduler, dash) = scheduler_with_dashboard(&runtime);
    let addr = dash.addr().to_string();
    let refused = |path: &str| match EventStream::open(&addr, path) {
        Ok(_) => panic!("{path} was accepted"),
        Err(e) => e,
    };
    let (code, body) = refused("/api/events?topics=status,bogus");
    assert_eq!(code, 400);
    assert!(
        body.contains("\"bogus\"") && body.contains("topics=status,graph,tasks"),
        "{body}"
    );
    let (code, body) = refused("/api/events?interval=1");
    assert_eq!(code, 400);
    assert!(body.contains("interval must be"), "{body}");
    assert_eq!(refused("/api/events?interval=soon").0, 400);

    // A bounded number of streams: one more is refused, saying why.
    let open: Vec<EventStream> = (0..MAX_PUSH_STREAMS)
        .map(|_| EventStream::open(&addr, "/api/events?interval=10000").unwrap())
        .collect();
    let (code, body) = refused("/api/events");
    assert_eq!(code, 503);
    assert!(body.contains("close some"), "{body}");
    drop(open);
    dash.shutdown();
    scheduler.shutdown();
}

#[test]
fn a_busy_task_stream_is_followed_by_its_newest_records() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (scheduler, dash) = scheduler_with_dashboard(&runtime);
    let stream = scheduler.task_stream();
    let worker: std::sync::Arc<str> = "127.0.0.1:1".into();
    let push = |from: u64, to: u64| {
        for i in from..to {
            let timing = TaskTiming {
                start: i as f64,
                stop: i as f64 + 0.5,
                thread: 0,
            };
            stream.push(Key::new("rec-5eed", [i]), &worker, timing, true);
        }
    };
    let per_event = TASKS_PER_EVENT;
    push(0, 2 * per_event + 500);
    let addr = dash.addr().to_string();
    let mut events = EventStream::open(&addr, "/api/events?topics=tasks&interval=20").unwrap();
    let seqs = |e: &Sse| -> Vec<u64> {
        e.json()["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["seq"].as_u64().unwrap())
            .collect()
    };
    // Connected: the newest records.
    let first = events.next().unwrap();
    assert_eq!(first.json()["skipped"], 0);
    assert_eq!(
        seqs(&first),
        (per_event + 500..2 * per_event + 500).collect::<Vec<_>>()
    );
    // A burst larger than one event: the newest come, the rest are counted.
    push(2 * per_event + 500, 4 * per_event);
    let next = events.next().unwrap();
    assert_eq!(next.json()["skipped"], 500);
    assert_eq!(
        seqs(&next),
        (3 * per_event..4 * per_event).collect::<Vec<_>>()
    );
    assert_eq!(
        next.id.as_deref(),
        Some((4 * per_event).to_string().as_str())
    );
    // A reconnecting browser continues from its last id.
    push(4 * per_event, 4 * per_event + 3);
    let mut again = EventStream::open_with(
        &addr,
        "/api/events?topics=tasks",
        &format!("Last-Event-ID: {}\r\n", 4 * per_event),
    )
    .unwrap();
    let resumed = again.next().unwrap();
    assert_eq!(
        seqs(&resumed),
        vec![4 * per_event, 4 * per_event + 1, 4 * per_event + 2]
    );
    dash.shutdown();
    scheduler.shutdown();
}

fn plain_spec(key: Key, deps: Vec<Key>) -> TaskSpec {
    TaskSpec {
        key,
        dependencies: deps,
        run_spec: Bytes::new(),
        priority: Priority::default(),
        retries: 0,
        restrictions: None,
    }
}

/// Runs `tasks` for client 1 on the simulated worker(s) to the end.
fn run(state: &mut SchedulerState, tasks: Vec<TaskSpec>, wanted: Vec<Key>) {
    let mut actions = state
        .handle(Event::UpdateGraph {
            client: 1,
            tasks,
            wanted,
        })
        .unwrap();
    while let Some(action) = actions.pop() {
        if let Action::Compute { worker, key, .. } = action {
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
}

#[test]
fn the_graph_view_draws_small_graphs_and_counts_big_ones() {
    let dash = Dashboard::new();
    let mut state = SchedulerState::new();
    state.add_plugin(dash.plugin());
    state
        .handle(Event::AddWorker {
            worker: 1,
            nthreads: 4,
        })
        .unwrap();
    // Too big: independent tasks, one more than the limit.
    let big: Vec<Key> = (0..=GRAPH_LIMIT as u64)
        .map(|i| Key::new("big-5eed", [i]))
        .collect();
    let specs = big.iter().map(|k| plain_spec(k.clone(), vec![])).collect();
    run(&mut state, specs, big.clone());
    let g = dash.graph();
    assert!(g.too_big && g.nodes.is_empty());
    assert_eq!(g.tasks, big.len() as u64);
    assert_eq!(g.limit, GRAPH_LIMIT);
    state
        .handle(Event::ReleaseKeys {
            client: 1,
            keys: big,
        })
        .unwrap();
    assert_eq!(state.tasks().count(), 0);
    // The scheduler is empty; the next computation starts a new view: a
    // chain a -> b -> c, every node drawn with its edge and the state the
    // state machine itself gives it.
    let before = dash.graph().generation;
    let (a, b, c) = (Key::named("a"), Key::named("b"), Key::named("c"));
    let chain = vec![
        plain_spec(a.clone(), vec![]),
        plain_spec(b.clone(), vec![a.clone()]),
        plain_spec(c.clone(), vec![b.clone()]),
    ];
    run(&mut state, chain, vec![c.clone()]);
    let g = dash.graph();
    assert!(g.generation > before);
    assert!(!g.too_big);
    assert_eq!(g.nodes.len(), 3);
    for n in &g.nodes {
        let task = state
            .tasks()
            .find(|t| t.key.to_string() == n.key)
            .unwrap_or_else(|| panic!("{} is not in the scheduler", n.key));
        assert_eq!(
            n.state,
            dashboard::model::status_name(task.status),
            "{}",
            n.key
        );
        assert!(!n.forgotten);
        let deps: Vec<String> = n.deps.iter().map(|&i| g.nodes[i].key.clone()).collect();
        let want: Vec<String> = task.dependencies.iter().map(|k| k.to_string()).collect();
        assert_eq!(deps, want, "edges of {}", n.key);
    }
    // Released by its client: the view keeps the finished graph, faded.
    state
        .handle(Event::ReleaseKeys {
            client: 1,
            keys: vec![c],
        })
        .unwrap();
    assert_eq!(state.tasks().count(), 0);
    let g = dash.graph();
    assert_eq!(g.nodes.len(), 3);
    assert!(g.nodes.iter().all(|n| n.forgotten));
    let states = dash.graph_states();
    assert_eq!(states.forgotten, vec![0, 1, 2]);
}
