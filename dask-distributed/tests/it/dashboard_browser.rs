//! The dashboard end to end in headless Chromium, driven over WebDriver by
//! chromedriver (Debian packages `chromium` and `chromium-driver`, installed
//! by `.ci/run`): while a computation runs, the page's progress rises to the
//! number of tasks in the graph, the worker table lists every worker, the
//! browser logs no console error, and a screenshot is saved under the target
//! directory. Skips, saying so, where the browser is not installed.

use std::collections::BTreeSet;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--window-size=1200,900",
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
    let compute = std::thread::spawn(move || {
        let r = client.compute_graph(&graph, &outputs).map(|v| v.len());
        (client, r)
    });
    session.call("POST", "/url", Some(json!({ "url": link })));

    let read = "return [document.getElementById('tasks-done').textContent,\
                document.getElementById('tasks-total').textContent,\
                document.getElementById('connection').dataset.polls]";
    let mut seen = Vec::new();
    let start = Instant::now();
    while !compute.is_finished() {
        let v = session.script(read);
        let num = |i: usize| v[i].as_str().unwrap().trim().parse::<u64>().unwrap();
        seen.push((num(0), num(1), num(2)));
        assert!(start.elapsed() < DEADLINE, "the computation did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_client, outputs_len) = compute.join().expect("compute thread");
    assert_eq!(outputs_len.unwrap(), 20);
    // After the computation: the page catches up to the total.
    loop {
        let v = session.script(read);
        let num = |i: usize| v[i].as_str().unwrap().trim().parse::<u64>().unwrap();
        seen.push((num(0), num(1), num(2)));
        if num(0) == n_tasks && num(1) == n_tasks {
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
    assert!(seen.last().unwrap().2 > 0, "the page polled the API");

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
                document.getElementById('connection').dataset.polls]";
    loop {
        let v = session.script(read);
        let total = v[0].as_str().unwrap().trim().parse::<u64>().unwrap();
        if total == n_tasks && v[1].as_u64() == Some(n_tasks) {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the task stream page never showed {n_tasks} tasks: {v}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let prefixes = session.script(
        "return Array.from(document.querySelectorAll('#prefixes tbody tr'))\
         .map(function (tr) { return tr.dataset.prefix; })",
    );
    assert_eq!(prefixes, json!(["inc", "total"]), "a row per task prefix");
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
    drop(session);
    drop(driver);
    let _ = std::fs::remove_dir_all(&profile);
}
