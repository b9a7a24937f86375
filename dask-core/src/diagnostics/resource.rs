//! [`ResourceProfiler`]: samples this process's CPU and memory during computes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::callbacks::{self, Callback, CallbackGuard, RunInfo};

/// One sample of the process's resources.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResourceSample {
    /// Since the profiler's first compute started.
    pub time: Duration,
    /// CPU used since the previous sample, in percent of one core (200 = two
    /// cores busy).
    pub cpu_percent: f64,
    /// Resident memory, in bytes.
    pub rss_bytes: u64,
}

/// Samples CPU and resident memory every `dt` while a watched compute runs,
/// like Dask's `ResourceProfiler`. Reads `/proc/self`, so it records samples
/// on Linux only (elsewhere [`ResourceProfiler::results`] stays empty).
#[derive(Clone)]
pub struct ResourceProfiler {
    inner: Arc<Inner>,
}

struct Inner {
    dt: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    origin: Option<Instant>,
    samples: Vec<ResourceSample>,
    sampler: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

impl std::fmt::Debug for ResourceProfiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceProfiler")
            .field("dt", &self.inner.dt)
            .field("samples", &self.lock().samples.len())
            .finish()
    }
}

impl Default for ResourceProfiler {
    fn default() -> Self {
        ResourceProfiler::new()
    }
}

impl ResourceProfiler {
    /// Samples every 100 ms.
    pub fn new() -> ResourceProfiler {
        ResourceProfiler::with_interval(Duration::from_millis(100))
    }

    /// Samples every `dt` (at least 1 ms).
    pub fn with_interval(dt: Duration) -> ResourceProfiler {
        ResourceProfiler {
            inner: Arc::new(Inner {
                dt: dt.max(Duration::from_millis(1)),
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// Activates the profiler for computes started on this thread while the guard lives.
    pub fn register(&self) -> CallbackGuard {
        callbacks::register(Arc::new(self.clone()))
    }

    /// The samples taken so far.
    pub fn results(&self) -> Vec<ResourceSample> {
        self.lock().samples.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Stops the sampling thread, if one runs, and waits for it.
    fn stop(&self) {
        let sampler = self.lock().sampler.take();
        if let Some((stop, handle)) = sampler {
            stop.store(true, Ordering::Relaxed);
            handle.thread().unpark();
            let _ = handle.join();
        }
    }
}

/// CPU time (user + system) of this process, from `/proc/self/stat`.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) in parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // Linux reports clock ticks of 1/100 s on every common configuration.
    Some(Duration::from_millis(ticks * 10))
}

/// Resident memory of this process, from `/proc/self/status`.
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn sample(inner: &Inner, origin: Instant, stop: &AtomicBool) {
    let mut last = (Instant::now(), cpu_time());
    loop {
        std::thread::park_timeout(inner.dt);
        let now = Instant::now();
        let cpu = cpu_time();
        let (Some(c0), Some(c1), Some(rss)) = (last.1, cpu, rss_bytes()) else {
            return; // not Linux, or /proc unreadable: no samples
        };
        let wall = now.duration_since(last.0).as_secs_f64();
        let cpu_percent = if wall > 0.0 {
            100.0 * c1.saturating_sub(c0).as_secs_f64() / wall
        } else {
            0.0
        };
        inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .samples
            .push(ResourceSample {
                time: now.saturating_duration_since(origin),
                cpu_percent,
                rss_bytes: rss,
            });
        last = (now, cpu);
        if stop.load(Ordering::Relaxed) {
            return;
        }
    }
}

impl Callback for ResourceProfiler {
    fn start(&self, info: &RunInfo) {
        self.stop();
        let mut state = self.lock();
        let origin = *state.origin.get_or_insert(info.started);
        let stop = Arc::new(AtomicBool::new(false));
        let inner = self.inner.clone();
        let flag = stop.clone();
        let spawned = std::thread::Builder::new()
            .name("dask-resource-profiler".into())
            .spawn(move || sample(&inner, origin, &flag));
        // Without a thread (the OS refused one) there are no samples; the
        // compute itself is unaffected.
        if let Ok(handle) = spawned {
            state.sampler = Some((stop, handle));
        }
    }

    fn finish(&self, _info: &RunInfo, _ok: bool) {
        self.stop();
    }
}
