//! `/metrics`: the dashboard's numbers in Prometheus' text exposition format
//! (version 0.0.4).

use std::fmt::Write;

use super::model::{status_name, Snapshot, STATES};

/// The content type Prometheus expects for this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Escapes a label value (backslash, quote, newline).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Renders `snapshot` (and the event-loop lag, in seconds) as metrics.
pub fn render(snapshot: &Snapshot, event_loop_lag_s: f64) -> String {
    let mut out = String::new();
    let counts = &snapshot.tasks;
    let by_state = [
        counts.released,
        counts.waiting,
        counts.no_worker,
        counts.queued,
        counts.processing,
        counts.memory,
        counts.erred,
    ];
    family(
        &mut out,
        "dask_scheduler_tasks",
        "gauge",
        "Tasks the scheduler holds, by state.",
    );
    for (status, n) in STATES.iter().zip(by_state) {
        let _ = writeln!(
            out,
            "dask_scheduler_tasks{{state=\"{}\"}} {n}",
            status_name(*status)
        );
    }
    let counters = [
        (
            "dask_scheduler_tasks_finished_total",
            "Tasks that finished on a worker (processing -> memory; recomputations count again).",
            snapshot.finished_total,
        ),
        (
            "dask_scheduler_tasks_erred_total",
            "Transitions to erred.",
            snapshot.erred_total,
        ),
        (
            "dask_scheduler_tasks_forgotten_total",
            "Tasks removed from the scheduler.",
            counts.forgotten,
        ),
        (
            "dask_scheduler_tasks_seen_total",
            "Distinct tasks seen by the dashboard.",
            snapshot.tasks_seen,
        ),
        (
            "dask_scheduler_transitions_total",
            "Task transitions.",
            snapshot.transitions_total,
        ),
    ];
    for (name, help, value) in counters {
        family(&mut out, name, "counter", help);
        let _ = writeln!(out, "{name} {value}");
    }
    let workers = &snapshot.workers;
    family(
        &mut out,
        "dask_scheduler_workers",
        "gauge",
        "Connected workers.",
    );
    let _ = writeln!(out, "dask_scheduler_workers {}", workers.len());
    family(
        &mut out,
        "dask_scheduler_threads",
        "gauge",
        "Task threads over all workers.",
    );
    let threads: u64 = workers.iter().map(|w| u64::from(w.nthreads)).sum();
    let _ = writeln!(out, "dask_scheduler_threads {threads}");
    family(
        &mut out,
        "dask_worker_memory_bytes",
        "gauge",
        "Bytes of results a worker holds, as reported when they finished.",
    );
    for w in workers {
        let _ = writeln!(
            out,
            "dask_worker_memory_bytes{{worker=\"{}\"}} {}",
            label(&w.address),
            w.memory_bytes
        );
    }
    family(
        &mut out,
        "dask_worker_tasks_in_flight",
        "gauge",
        "Tasks sent to a worker and not finished.",
    );
    for w in workers {
        let _ = writeln!(
            out,
            "dask_worker_tasks_in_flight{{worker=\"{}\"}} {}",
            label(&w.address),
            w.in_flight
        );
    }
    family(
        &mut out,
        "dask_scheduler_event_loop_lag_seconds",
        "gauge",
        "How late the scheduler runtime's last timer tick fired.",
    );
    let _ = writeln!(
        out,
        "dask_scheduler_event_loop_lag_seconds {event_loop_lag_s}"
    );
    family(
        &mut out,
        "dask_scheduler_uptime_seconds",
        "gauge",
        "Seconds since the dashboard started.",
    );
    let _ = writeln!(out, "dask_scheduler_uptime_seconds {}", snapshot.uptime_s);
    out
}
