//! Renders profiles as standalone SVG timelines and an HTML report.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use super::{Profiler, ResourceProfiler, ResourceSample, TaskRecord};
use crate::{Error, Result};

const WIDTH: f64 = 960.0;
const LEFT: f64 = 90.0;
const ROW: f64 = 22.0;
const PALETTE: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

/// Escapes text for SVG/HTML element content and attributes.
///
/// ```
/// assert_eq!(dask_core::diagnostics::escape_html("<a & 'b'>"), "&lt;a &amp; &#39;b&#39;&gt;");
/// ```
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Colour per op name, stable for the report (ops sorted by name).
fn colours(records: &[TaskRecord]) -> BTreeMap<&str, &'static str> {
    let mut ops: BTreeMap<&str, &'static str> =
        records.iter().map(|r| (r.op.as_str(), "")).collect();
    for (i, colour) in ops.values_mut().enumerate() {
        *colour = PALETTE[i % PALETTE.len()];
    }
    ops
}

/// Time axis ticks: about 8 round steps over `0..total` seconds.
fn ticks(total: f64) -> Vec<f64> {
    if total <= 0.0 {
        return vec![0.0];
    }
    let raw = total / 8.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    (0..)
        .map(|i| i as f64 * step)
        .take_while(|t| *t <= total + 1e-12)
        .collect()
}

fn axis(svg: &mut String, y: f64, total: f64) {
    let scale = (WIDTH - LEFT) / total.max(f64::MIN_POSITIVE);
    for t in ticks(total) {
        let x = LEFT + t * scale;
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" y1="{y:.1}" x2="{x:.1}" y2="{:.1}" stroke="#999"/><text x="{x:.1}" y="{:.1}" font-size="10" text-anchor="middle">{t:.3}s</text>"##,
            y + 4.0,
            y + 16.0
        );
    }
}

/// An SVG timeline of task records: one row per thread, one bar per task,
/// coloured by op, with the key, op and duration as a tooltip.
pub fn render_tasks_svg(records: &[TaskRecord]) -> String {
    let workers: Vec<usize> = {
        let mut w: Vec<usize> = records.iter().map(|r| r.worker).collect();
        w.sort_unstable();
        w.dedup();
        w
    };
    let names: Vec<String> = workers
        .iter()
        .map(|w| {
            if *w == 0 {
                "caller".to_owned()
            } else {
                format!("thread {w}")
            }
        })
        .collect();
    let rows: Vec<TaskRecord> = records
        .iter()
        .map(|r| TaskRecord {
            worker: workers.binary_search(&r.worker).unwrap_or(0),
            ..r.clone()
        })
        .collect();
    render_lanes_svg(&names, &rows)
}

/// An SVG timeline in named lanes: one row per entry of `lanes`, one bar per
/// record in the row `record.worker` indexes (records past the end go to the
/// last row), coloured by `op`, with the key, op and duration as a tooltip.
/// [`render_tasks_svg`] names lanes after threads; the distributed task
/// stream after worker threads.
pub fn render_lanes_svg(lanes: &[String], records: &[TaskRecord]) -> String {
    let last = lanes.len().max(1) - 1;
    let total = records
        .iter()
        .map(|r| r.end.as_secs_f64())
        .fold(0.0, f64::max);
    let scale = (WIDTH - LEFT) / total.max(f64::MIN_POSITIVE);
    let height = lanes.len().max(1) as f64 * ROW + 30.0;
    let colour = colours(records);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="tasks" width="{WIDTH}" height="{height}" font-family="sans-serif">"#
    );
    for (row, name) in lanes.iter().enumerate() {
        let y = row as f64 * ROW;
        let _ = write!(
            svg,
            r#"<text x="4" y="{:.1}" font-size="11">{}</text>"#,
            y + ROW * 0.7,
            escape_html(name)
        );
    }
    for r in records {
        let row = r.worker.min(last);
        let x = LEFT + r.start.as_secs_f64() * scale;
        let w = (r.end.saturating_sub(r.start).as_secs_f64() * scale).max(0.5);
        let fill = if r.ok { colour[r.op.as_str()] } else { "#000" };
        let _ = write!(
            svg,
            r#"<rect class="task" x="{x:.2}" y="{:.1}" width="{w:.2}" height="{:.1}" fill="{fill}"><title>{} ({}) {:.3} ms{}</title></rect>"#,
            row as f64 * ROW + 2.0,
            ROW - 4.0,
            escape_html(&r.key.to_string()),
            escape_html(&r.op),
            r.end.saturating_sub(r.start).as_secs_f64() * 1e3,
            if r.ok { "" } else { " FAILED" },
        );
    }
    axis(&mut svg, lanes.len().max(1) as f64 * ROW + 4.0, total);
    svg.push_str("</svg>");
    svg
}

/// An SVG chart of resource samples: CPU % (blue) and memory (orange), each
/// scaled to its own maximum, which the labels give.
pub fn render_resources_svg(samples: &[ResourceSample]) -> String {
    let h = 120.0;
    let total = samples
        .iter()
        .map(|s| s.time.as_secs_f64())
        .fold(0.0, f64::max);
    let scale = (WIDTH - LEFT) / total.max(f64::MIN_POSITIVE);
    let max_cpu = samples.iter().map(|s| s.cpu_percent).fold(1.0, f64::max);
    let max_mem = samples
        .iter()
        .map(|s| s.rss_bytes)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let line = |f: &dyn Fn(&ResourceSample) -> f64| -> String {
        samples
            .iter()
            .map(|s| {
                format!(
                    "{:.1},{:.1}",
                    LEFT + s.time.as_secs_f64() * scale,
                    h - f(s) * (h - 10.0)
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="resources" width="{WIDTH}" height="{:.0}" font-family="sans-serif"><text x="4" y="14" font-size="11" fill="#1f77b4">CPU max {max_cpu:.0}%</text><text x="4" y="30" font-size="11" fill="#ff7f0e">RSS max {:.1} MiB</text><polyline fill="none" stroke="#1f77b4" points="{}"/><polyline fill="none" stroke="#ff7f0e" points="{}"/>"##,
        h + 24.0,
        max_mem / (1024.0 * 1024.0),
        line(&|s| s.cpu_percent / max_cpu),
        line(&|s| s.rss_bytes as f64 / max_mem),
    );
    axis(&mut svg, h + 4.0, total);
    svg.push_str("</svg>");
    svg
}

/// Writes a standalone HTML report (no external assets): the task timeline, a
/// per-op summary and, when given, the resource chart.
pub fn write_report(
    path: impl AsRef<Path>,
    profiler: &Profiler,
    resources: Option<&ResourceProfiler>,
) -> Result<()> {
    let records = profiler.results();
    let mut by_op: BTreeMap<&str, (usize, f64, usize)> = BTreeMap::new();
    for r in &records {
        let e = by_op.entry(r.op.as_str()).or_default();
        e.0 += 1;
        e.1 += (r.end - r.start).as_secs_f64();
        e.2 += usize::from(!r.ok);
    }
    let mut html = String::from(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>dask-rs profile</title>\
         <style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}\
         td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}</style></head><body>",
    );
    let _ = write!(
        html,
        "<h1>Profile</h1><p>{} tasks</p><h2>Task stream</h2>{}",
        records.len(),
        render_tasks_svg(&records)
    );
    html.push_str(
        "<h2>By op</h2><table><tr><th>op</th><th>tasks</th><th>total ms</th><th>failed</th></tr>",
    );
    for (op, (n, secs, failed)) in &by_op {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{n}</td><td>{:.3}</td><td>{failed}</td></tr>",
            escape_html(op),
            secs * 1e3
        );
    }
    html.push_str("</table>");
    if let Some(res) = resources {
        let _ = write!(
            html,
            "<h2>Resources</h2>{}",
            render_resources_svg(&res.results())
        );
    }
    html.push_str("</body></html>\n");
    let path = path.as_ref();
    std::fs::write(path, html).map_err(|source| Error::Io {
        action: "writing the profile report to".into(),
        path: path.to_owned(),
        source,
    })
}
