//! The dashboard end to end in headless Chromium, driven over WebDriver by
//! chromedriver (Debian packages `chromium` and `chromium-driver`, installed
//! by `.ci/run`): while a computation runs, the page's progress rises to the
//! number of tasks in the graph through pushed updates (a marker set on
//! `window` after the load survives: the page never reloads, and it never
//! requests the JSON API), the worker table lists every worker, the graph
//! panel draws one node per task with the state the scheduler gives it, the
//! browser logs no console error, and screenshots are saved under the target
//! directory. Skips, saying so, where the browser is not installed.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dask_distributed::dashboard::model::status_name;
use dask_distributed::{Client, LocalCluster};
use serde_json::{json, Value as Json};

use super::dashboard::{get, request, two_group_graph};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Bound on every wait of this test (not an assertion on speed).
const DEADLINE: Duration = Duration::from_secs(120);

/// chromedriver in its own process group (with the browser it starts): the
/// whole group is killed, and chromedriver reaped, on drop.
struct Driver {
    child: Child,
    addr: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A WebDriver session; deleting it closes the browser.
struct Session<'a> {
    driver: &'a Driver,
    id: String,
    /// The browser's process id, as chromedriver reports it.
    browser_pid: Option<u64>,
}

/// Whether `pid` runs (a zombie or a missing process does not).
fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
            !matches!(state, Some(Some('Z' | 'X')))
        })
        .unwrap_or(false)
}

impl Session<'_> {
    fn call(&self, method: &str, path: &str, body: Option<Json>) -> Json {
        let body = body.map(|b| b.to_string());
        let r = request(
            method,
            &self.driver.addr,
            &format!("/session/{}{path}", self.id),
            body.as_deref(),
        );
        assert_eq!(r.status, 200, "{method} {path}: {}", r.body);
        let v: Json = serde_json::from_str(&r.body).unwrap();
        v["value"].clone()
    }

    fn script(&self, js: &str) -> Json {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": js, "args": []})),
        )
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| {
            request(
                "DELETE",
                &self.driver.addr,
                &format!("/session/{}", self.id),
                None,
            )
        });
        // The browser should be gone; make sure, within a bound.
        if let Some(pid) = self.browser_pid {
            let start = Instant::now();
            while alive(pid) && start.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(50));
            }
            if alive(pid) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn start_driver(log: &Path) -> Driver {
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver {
        child,
        addr: format!("127.0.0.1:{port}"),
    };
    let start = Instant::now();
    while std::net::TcpStream::connect(&driver.addr).is_err() {
        assert!(
            start.elapsed() < DEADLINE,
            "chromedriver did not listen on {} (log: {})",
            driver.addr,
            log.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    driver
}

fn decode_base64(s: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let bytes: Vec<u8> = s.bytes().filter(|c| *c != b'=' && *c != b'\n').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, c)| acc | (value(*c) << (18 - 6 * i)));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

#[test]
fn base64_decoder_matches_known_vectors() {
    assert_eq!(decode_base64("TWFu"), b"Man");
    assert_eq!(decode_base64("TWE="), b"Ma");
    assert_eq!(decode_base64("TQ=="), b"M");
}

#[test]
fn the_dashboard_in_headless_chromium() {
    if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
        eprintln!(
            "SKIP the_dashboard_in_headless_chromium: {CHROMIUM} or {CHROMEDRIVER} is absent; \
             install the Debian packages chromium and chromium-driver (.ci/run does, as root)"
        );
        return;
    }
    let artifacts = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-e2e");
    std::fs::create_dir_all(&artifacts).unwrap();
    let profile = artifacts.join(format!("profile-{}", std::process::id()));

    let n_workers = 3;
    let cluster = LocalCluster::builder()
        .n_workers(n_workers)
        .threads_per_worker(1)
        .dashboard_port(0)
        .start()
        .unwrap();
    let link = cluster.dashboard_link().unwrap();
    let dashboard = cluster.dashboard_address().unwrap();
    let workers: BTreeSet<String> = cluster.worker_addrs().into_iter().collect();
    let client = Client::with_cluster(cluster).unwrap();
    assert_eq!(get(&dashboard, "/health").status, 200);

    let driver = start_driver(&artifacts.join("chromedriver.log"));
    let caps = json!({"capabilities": {"alwaysMatch": {
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--window-size=1200,1300",
                     format!("--user-data-dir={}", profile.display())],
        },
        "goog:loggingPrefs": {"browser": "ALL"},
        "timeouts": {"pageLoad": 60000, "script": 30000},
    }}});
    let r = request("POST", &driver.addr, "/session", Some(&caps.to_string()));
    assert_eq!(r.status, 200, "new session: {}", r.body);
    let v: Json = serde_json::from_str(&r.body).unwrap();
    let session = Session {
        driver: &driver,
        id: v["value"]["sessionId"].as_str().unwrap().to_owned(),
        browser_pid: v["value"]["capabilities"]["goog:processID"].as_u64(),
    };
    assert!(session.browser_pid.is_some(), "{}", r.body);

    // The computation runs while the page is open.
    let (graph, outputs) = two_group_graph(20, Duration::from_millis(20));
    let n_tasks = graph.len() as u64;
    // The oracle for the group rows: the graph's keys counted by name.
    let count = |prefix: &str| {
        graph
            .keys()
            .filter(|k| k.name().starts_with(prefix))
            .count()
    };
    let (n_inc, n_total) = (count("inc-"), count("total-"));
    let expected_groups = json!({
        "inc": format!("{n_inc} / {n_inc}"),
        "total": format!("{n_total} / {n_total}"),
    });
    // The page first, then the computation: every number it shows arrives
    // by push.
    session.call("POST", "/url", Some(json!({ "url": link })));
    // A reload would lose this.
    let marker = format!("loaded-{}", std::process::id());
    session.script(&format!("window.__daskMarker = '{marker}'; return 1"));
    let all_keys: Vec<_> = graph.keys().cloned().collect();
    // Persisted: the results stay on the cluster, so the scheduler still
    // knows every key's final state when the page is checked.
    let compute = std::thread::spawn(move || {
        let r = client.persist_graph(&graph, &outputs).map(|g| (g.len(), g));
        (client, r)
    });

    let read = "return [document.getElementById('tasks-done').textContent,\
                document.getElementById('tasks-total').textContent,\
                document.getElementById('connection').dataset.updates,\
                String(window.__daskMarker)]";
    let mut seen = Vec::new();
    let start = Instant::now();
    let sample = |seen: &mut Vec<(u64, u64, u64)>| {
        let v = session.script(read);
        let num = |i: usize| v[i].as_str().unwrap().trim().parse::<u64>().unwrap();
        assert_eq!(v[3], json!(marker), "the page was reloaded");
        seen.push((num(0), num(1), num(2)));
        (num(0), num(1))
    };
    while !compute.is_finished() {
        sample(&mut seen);
        assert!(start.elapsed() < DEADLINE, "the computation did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (client, persisted) = compute.join().expect("compute thread");
    let (n_persisted, persisted) = persisted.unwrap();
    assert_eq!(n_persisted, 20);
    // After the computation: the page catches up to the total.
    loop {
        let (done, total) = sample(&mut seen);
        if done == n_tasks && total == n_tasks {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the page never showed {n_tasks}/{n_tasks}: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Progress only rises, and never past the total.
    assert!(
        seen.windows(2).all(|w| w[0].0 <= w[1].0),
        "progress went down: {seen:?}"
    );
    assert!(seen
        .iter()
        .all(|(done, total, _)| done <= total && *total <= n_tasks));
    assert!(seen.last().unwrap().2 > 0, "the page got pushed updates");
    let distinct: BTreeSet<u64> = seen.iter().map(|s| s.0).collect();
    assert!(
        distinct.len() >= 2,
        "the numbers rose on the same page: {seen:?}"
    );
    // Pushed, not polled: the page never asked the JSON API.
    let requested = session.script(
        "return performance.getEntriesByType('resource').map(function (e) { return e.name; })",
    );
    let polled: Vec<&Json> = requested
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| {
            let u = u.as_str().unwrap();
            u.contains("/api/status")
                || u.contains("/api/task-stream")
                || u.contains("/api/workers")
        })
        .collect();
    assert!(polled.is_empty(), "the page polled: {polled:?}");

    let listed = session.script(
        "return Array.from(document.querySelectorAll('#workers tbody tr'))\
         .map(function (tr) { return tr.dataset.address; })",
    );
    let listed: BTreeSet<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, workers, "the worker table lists every worker");
    let groups = session.script(
        "var rows = {}; document.querySelectorAll('#groups tbody tr').forEach(function (tr) \
         { rows[tr.dataset.group] = tr.querySelector('td.group-progress').textContent; }); \
         return rows",
    );
    assert_eq!(groups, expected_groups, "progress per group");
    let errors = session.script("return document.getElementById('errors').textContent");
    assert_eq!(errors, json!(""));

    // The graph panel: a failing task and its dependent join the running
    // computation (the persisted keys are still held).
    let bad = client
        .submit(
            |x: u64| -> u64 {
                if x > 0 {
                    panic!("intentional failure for the graph view");
                }
                x
            },
            (1u64,),
        )
        .unwrap();
    let after_bad = client.submit(|x: u64| x + 1, (&bad,)).unwrap();
    assert!(
        after_bad.result().is_err(),
        "a dependent of a failed task fails"
    );
    let mut keys = all_keys.clone();
    keys.push(bad.key().clone());
    keys.push(after_bad.key().clone());
    // The oracle: the scheduler's state of each key, asked over the client.
    let want: BTreeMap<String, String> = keys
        .iter()
        .map(|k| {
            let s = client.task_state(k).unwrap().expect("a held key is known");
            (k.to_string(), status_name(s).to_owned())
        })
        .collect();
    assert!(want.values().any(|s| s == "memory") && want.values().any(|s| s == "erred"));
    let read_graph = "var out = {}; document.querySelectorAll('#graph circle.node')\
        .forEach(function (c) { out[c.getAttribute('data-key')] = c.getAttribute('data-state'); });\
        return [out, document.querySelectorAll('#graph circle.node').length, String(window.__daskMarker)]";
    loop {
        let v = session.script(read_graph);
        assert_eq!(v[2], json!(marker), "the page was reloaded");
        let drawn: BTreeMap<String, String> = v[0]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, s)| (k.clone(), s.as_str().unwrap().to_owned()))
            .collect();
        if drawn == want && v[1].as_u64() == Some(keys.len() as u64) {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the graph panel never showed the scheduler's states\n drawn: {drawn:?}\n want: {want:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let edges = session.script("return document.querySelectorAll('#graph line.edge').length");
    // Three inputs per total, one for the failed task's dependent.
    assert_eq!(edges.as_u64(), Some(3 * 20 + 1));
    let errors = session.script("return document.getElementById('errors').textContent");
    assert_eq!(errors, json!(""));

    let png = session.call("GET", "/screenshot", None);
    let png = decode_base64(png.as_str().unwrap());
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let shot = artifacts.join("dashboard.png");
    std::fs::write(&shot, &png).unwrap();
    eprintln!("dashboard screenshot: {}", shot.display());

    // The task-stream page: a lane per worker thread, a bar per task of
    // the graph (all within the hour it shows), every prefix.
    let tasks_link = link.replace("/status", "/tasks?window=3600");
    session.call("POST", "/url", Some(json!({ "url": tasks_link })));
    let read = "return [document.getElementById('stream-total').textContent,\
                document.querySelectorAll('#lanes rect.task').length,\
                document.getElementById('connection').dataset.updates]";
    // Every task ran once, and the failing one; its dependent never ran.
    let ran = n_tasks + 1;
    loop {
        let v = session.script(read);
        let total = v[0].as_str().unwrap().trim().parse::<u64>().unwrap();
        if total == ran && v[1].as_u64() == Some(ran) {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the task stream page never showed {ran} tasks: {v}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let prefixes = session.script(
        "return Array.from(document.querySelectorAll('#prefixes tbody tr'))\
         .map(function (tr) { return tr.dataset.prefix; })",
    );
    let prefixes: BTreeSet<String> = prefixes
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect();
    let want_prefixes: BTreeSet<String> = all_keys
        .iter()
        .chain([bad.key()])
        .map(|k| dask_distributed::dashboard::model::task_group(k.name()).to_owned())
        .collect();
    assert_eq!(prefixes, want_prefixes, "a row per task prefix");
    let lanes = session.script("return document.querySelectorAll('#lanes svg > text').length");
    // One label per worker thread (1 thread each) plus the axis ticks.
    assert_eq!(lanes.as_u64(), Some(n_workers as u64 + 5));
    let errors = session.script("return document.getElementById('errors').textContent");
    assert_eq!(errors, json!(""));
    let png = session.call("GET", "/screenshot", None);
    let shot = artifacts.join("task-stream.png");
    std::fs::write(&shot, decode_base64(png.as_str().unwrap())).unwrap();
    eprintln!("task stream screenshot: {}", shot.display());

    let logs = session.call("POST", "/se/log", Some(json!({"type": "browser"})));
    let severe: Vec<&Json> = logs
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["level"] == "SEVERE")
        .collect();
    assert!(severe.is_empty(), "console errors: {severe:?}");
    drop((bad, after_bad, persisted));
    drop(session);
    drop(driver);
    let _ = std::fs::remove_dir_all(&profile);
}
