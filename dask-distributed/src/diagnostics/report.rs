//! [`Client::performance_report`]: records what the cluster did while a
//! closure ran and writes it as one standalone HTML file, like Dask's
//! `with performance_report(filename=...)`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dask_core::diagnostics::{escape_html, render_lanes_svg, TaskRecord};

use super::WorkerMemory;
use crate::client::Inner;
use crate::task_stream::{self, RunStatus, TaskStreamRecord};
use crate::{Client, Error, Result};

/// How often worker memory is sampled while a report records.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// Longest wait for one answer of the scheduler while recording.
const QUERY_LIMIT: Duration = Duration::from_secs(10);

/// One sample of every worker's memory.
struct Sample {
    /// Seconds since the report started.
    at: f64,
    workers: Vec<WorkerMemory>,
}

/// What a written report contains.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportSummary {
    /// Where it was written.
    pub path: PathBuf,
    /// Task runs recorded.
    pub tasks: usize,
    /// Of which failed.
    pub erred: usize,
    /// The task prefixes seen, sorted.
    pub prefixes: Vec<String>,
    /// Runs that finished during the report but fell out of the scheduler's
    /// task stream before it was read (its ring is bounded).
    pub dropped: u64,
    /// Seconds the report recorded.
    pub duration_s: f64,
}

/// A performance report being recorded; [`PerformanceReport::finish`]
/// writes it. [`Client::performance_report`] wraps a closure in one.
pub struct PerformanceReport {
    inner: Arc<Inner>,
    path: PathBuf,
    start_seq: u64,
    started: Instant,
    started_epoch: f64,
    sampler: Option<(mpsc::Sender<()>, JoinHandle<Vec<Sample>>)>,
}

impl std::fmt::Debug for PerformanceReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerformanceReport")
            .field("path", &self.path)
            .field("start_seq", &self.start_seq)
            .finish()
    }
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Core(dask_core::Error::Io {
        action: "writing the performance report to".into(),
        path: path.to_owned(),
        source,
    })
}

async fn limited<T>(what: &str, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(QUERY_LIMIT, f)
        .await
        .map_err(|_| Error::Timeout {
            what: format!("the scheduler's answer to {what}"),
            seconds: QUERY_LIMIT.as_secs_f64(),
        })?
}

impl PerformanceReport {
    /// Starts recording: from now on, tasks the cluster runs and its
    /// workers' memory (sampled every 100 ms) go into the report. Fails at
    /// once if `path`'s directory does not exist.
    pub fn start(client: &Client, path: impl AsRef<Path>) -> Result<PerformanceReport> {
        let path = path.as_ref().to_owned();
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(io_error(
                &path,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!(
                        "directory {} does not exist: create it first",
                        dir.display()
                    ),
                ),
            ));
        }
        let inner = client.inner().clone();
        let i = inner.clone();
        let start_seq = inner.block_on(async move {
            limited("a task-stream query", async {
                let page = i
                    .query(crate::messages::Query::TaskStream { since: 0, limit: 0 })
                    .await?;
                match page {
                    crate::messages::Answer::TaskStream(p) => Ok(p.next),
                    other => Err(super::unexpected(&other)),
                }
            })
            .await
        })??;
        let started = Instant::now();
        let (stop, stopped) = mpsc::channel::<()>();
        let i = inner.clone();
        let sampler = std::thread::Builder::new()
            .name("dask-report-sampler".into())
            .spawn(move || {
                let mut samples = Vec::new();
                loop {
                    let j = i.clone();
                    let got = i.block_on(async move {
                        limited("a worker-memory query", j.worker_memory()).await
                    });
                    match got {
                        Ok(Ok(workers)) => samples.push(Sample {
                            at: started.elapsed().as_secs_f64(),
                            workers,
                        }),
                        _ => break, // the client is gone: keep what we have
                    }
                    match stopped.recv_timeout(SAMPLE_EVERY) {
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        _ => break,
                    }
                }
                samples
            })?;
        Ok(PerformanceReport {
            inner,
            path,
            start_seq,
            started,
            started_epoch: task_stream::now(),
            sampler: Some((stop, sampler)),
        })
    }

    /// Stops recording and writes the report.
    pub fn finish(mut self) -> Result<ReportSummary> {
        let mut samples = self.stop_sampler();
        let duration_s = self.started.elapsed().as_secs_f64();
        let inner = self.inner.clone();
        let since = self.start_seq;
        let (page, last) = self.inner.block_on(async move {
            let page = limited("a task-stream query", inner.task_stream_since(since)).await?;
            let last = limited("a worker-memory query", inner.worker_memory()).await?;
            Ok::<_, Error>((page, last))
        })??;
        samples.push(Sample {
            at: duration_s,
            workers: last,
        });
        let dropped = page.first.saturating_sub(since);
        let records = page.records;
        let html = render(&records, &samples, duration_s, self.started_epoch, dropped);
        std::fs::write(&self.path, html).map_err(|e| io_error(&self.path, e))?;
        let mut prefixes: Vec<String> = records.iter().map(|r| r.prefix.clone()).collect();
        prefixes.sort();
        prefixes.dedup();
        Ok(ReportSummary {
            path: self.path.clone(),
            tasks: records.len(),
            erred: records
                .iter()
                .filter(|r| r.status == RunStatus::Error)
                .count(),
            prefixes,
            dropped,
            duration_s,
        })
    }

    fn stop_sampler(&mut self) -> Vec<Sample> {
        match self.sampler.take() {
            Some((stop, thread)) => {
                let _ = stop.send(());
                thread.join().unwrap_or_default()
            }
            None => Vec::new(),
        }
    }
}

impl Drop for PerformanceReport {
    fn drop(&mut self) {
        // Not finished (an early return or a panic): stop sampling, write nothing.
        self.stop_sampler();
    }
}

impl Client {
    /// Runs `f` and writes a standalone HTML report of what the cluster did
    /// meanwhile to `path`, like Dask's `with performance_report(...)`: the
    /// task stream (one lane per worker thread), per task prefix the count,
    /// failures and durations, per worker the tasks, busy time and memory
    /// over time. Gives `f`'s result; an error if the report could not be
    /// recorded or written (then `f` did not run if recording could not
    /// start).
    pub fn performance_report<R>(
        &self,
        path: impl AsRef<Path>,
        f: impl FnOnce() -> R,
    ) -> Result<R> {
        let report = PerformanceReport::start(self, path)?;
        let out = f();
        report.finish()?;
        Ok(out)
    }
}

fn secs(x: f64) -> Duration {
    Duration::try_from_secs_f64(x.max(0.0)).unwrap_or_default()
}

/// Per prefix: runs, failures, total, max seconds.
#[derive(Default)]
struct PrefixStats {
    runs: usize,
    erred: usize,
    total: f64,
    max: f64,
}

/// Per worker: runs, busy seconds, threads seen.
#[derive(Default)]
struct WorkerStats {
    runs: usize,
    busy: f64,
}

fn render(
    records: &[TaskStreamRecord],
    samples: &[Sample],
    duration_s: f64,
    started_epoch: f64,
    dropped: u64,
) -> String {
    // Lanes: one per worker thread that ran something, sorted.
    let mut lanes: Vec<(String, u32)> = records
        .iter()
        .map(|r| (r.worker.clone(), r.thread))
        .collect();
    lanes.sort();
    lanes.dedup();
    let lane_names: Vec<String> = lanes.iter().map(|(w, t)| format!("{w} #{t}")).collect();
    let t0 = records
        .iter()
        .map(|r| r.start)
        .fold(started_epoch, f64::min);
    let timeline: Vec<TaskRecord> = records
        .iter()
        .map(|r| TaskRecord {
            key: r.key.clone(),
            op: r.prefix.clone(),
            worker: lanes
                .binary_search(&(r.worker.clone(), r.thread))
                .unwrap_or(0),
            start: secs(r.start - t0),
            end: secs(r.stop - t0).max(secs(r.start - t0)),
            ok: r.status == RunStatus::Ok,
        })
        .collect();
    let mut prefixes: BTreeMap<&str, PrefixStats> = BTreeMap::new();
    let mut workers: BTreeMap<&str, WorkerStats> = BTreeMap::new();
    for r in records {
        let p = prefixes.entry(r.prefix.as_str()).or_default();
        p.runs += 1;
        p.erred += usize::from(r.status == RunStatus::Error);
        p.total += r.duration();
        p.max = p.max.max(r.duration());
        let w = workers.entry(r.worker.as_str()).or_default();
        w.runs += 1;
        w.busy += r.duration();
    }
    let erred: usize = prefixes.values().map(|p| p.erred).sum();
    let memory = memory_table(samples);
    let n_threads: u64 = samples
        .last()
        .map(|s| s.workers.iter().map(|w| u64::from(w.nthreads)).sum())
        .unwrap_or(0);

    let mut html = String::from(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>dask-rs performance report</title>\
         <style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}\
         td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}\
         td:first-child,th:first-child{text-align:left}.warn{color:#b00}</style></head><body>",
    );
    let _ = write!(
        html,
        "<h1>dask-rs performance report</h1><p id=\"summary\">{} task runs ({} failed) in {:.3} s \
         on {} workers with {} threads; {} task prefixes.</p>",
        records.len(),
        erred,
        duration_s,
        memory.len(),
        n_threads,
        prefixes.len()
    );
    if dropped > 0 {
        let _ = write!(
            html,
            "<p class=\"warn\">{dropped} earlier task runs fell out of the scheduler's task \
             stream before the report read it: raise <code>task_stream_capacity</code> \
             to keep them.</p>"
        );
    }
    let _ = write!(
        html,
        "<h2>Task stream</h2><p>One lane per worker thread; seconds since the report started \
         (or the first task seen).</p>{}",
        render_lanes_svg(&lane_names, &timeline)
    );
    html.push_str(
        "<h2>Task prefixes</h2><table id=\"prefixes\"><tr><th>prefix</th><th>runs</th>\
         <th>failed</th><th>total s</th><th>mean ms</th><th>max ms</th></tr>",
    );
    let mut by_time: Vec<(&&str, &PrefixStats)> = prefixes.iter().collect();
    by_time.sort_by(|a, b| b.1.total.total_cmp(&a.1.total));
    for (name, p) in by_time {
        let _ = write!(
            html,
            "<tr class=\"prefix\" data-prefix=\"{0}\"><td>{0}</td><td>{1}</td><td>{2}</td>\
             <td>{3:.3}</td><td>{4:.3}</td><td>{5:.3}</td></tr>",
            escape_html(name),
            p.runs,
            p.erred,
            p.total,
            p.total * 1e3 / p.runs.max(1) as f64,
            p.max * 1e3
        );
    }
    html.push_str("</table>");
    html.push_str(
        "<h2>Workers</h2><table id=\"workers\"><tr><th>worker</th><th>threads</th>\
         <th>task runs</th><th>busy s</th><th>busy %</th><th>memory at end</th>\
         <th>peak memory</th></tr>",
    );
    for (addr, (nthreads, end, peak)) in &memory {
        let w = workers.get(addr.as_str());
        let busy = w.map_or(0.0, |w| w.busy);
        let capacity = duration_s * f64::from((*nthreads).max(1));
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{nthreads}</td><td>{}</td><td>{busy:.3}</td><td>{:.1}</td>\
             <td>{}</td><td>{}</td></tr>",
            escape_html(addr),
            w.map_or(0, |w| w.runs),
            if capacity > 0.0 {
                100.0 * busy / capacity
            } else {
                0.0
            },
            crate::cluster::format_bytes(*end),
            crate::cluster::format_bytes(*peak),
        );
    }
    html.push_str("</table>");
    let _ = write!(
        html,
        "<h2>Worker memory</h2><p>Bytes of results each worker holds, sampled every {} ms.</p>{}",
        SAMPLE_EVERY.as_millis(),
        memory_svg(samples, duration_s)
    );
    html.push_str("</body></html>\n");
    html
}

/// Per worker address: threads, bytes at the end, peak bytes.
fn memory_table(samples: &[Sample]) -> BTreeMap<String, (u32, u64, u64)> {
    let mut out: BTreeMap<String, (u32, u64, u64)> = BTreeMap::new();
    for s in samples {
        for w in &s.workers {
            let e = out.entry(w.addr.clone()).or_default();
            e.0 = w.nthreads;
            e.1 = w.bytes;
            e.2 = e.2.max(w.bytes);
        }
    }
    out
}

/// A line per worker: bytes held over time.
fn memory_svg(samples: &[Sample], duration_s: f64) -> String {
    const W: f64 = 960.0;
    const LEFT: f64 = 90.0;
    const H: f64 = 140.0;
    const PALETTE: [&str; 6] = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
    ];
    let max = samples
        .iter()
        .flat_map(|s| s.workers.iter().map(|w| w.bytes))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let scale = (W - LEFT) / duration_s.max(1e-9);
    let mut lines: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for s in samples {
        for w in &s.workers {
            lines.entry(w.addr.as_str()).or_default().push(format!(
                "{:.1},{:.1}",
                LEFT + s.at * scale,
                H - (w.bytes as f64 / max) * (H - 20.0)
            ));
        }
    }
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="memory" width="{W}" height="{:.0}" font-family="sans-serif"><text x="4" y="14" font-size="11">max {}</text><text x="{LEFT}" y="{:.0}" font-size="10">0 s</text><text x="{W}" y="{:.0}" font-size="10" text-anchor="end">{duration_s:.3} s</text>"##,
        H + 20.0,
        crate::cluster::format_bytes(max as u64),
        H + 14.0,
        H + 14.0,
    );
    for (i, (addr, points)) in lines.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{colour}" points="{}"><title>{}</title></polyline><text x="4" y="{:.0}" font-size="10" fill="{colour}">{}</text>"#,
            points.join(" "),
            escape_html(addr),
            30.0 + 12.0 * i as f64,
            escape_html(addr)
        );
    }
    svg.push_str("</svg>");
    svg
}
