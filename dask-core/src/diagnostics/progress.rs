//! [`ProgressBar`]: a terminal progress bar for local computes.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use indicatif::{ProgressDrawTarget, ProgressStyle};

use crate::callbacks::{self, Callback, CallbackGuard, RunInfo, TaskEvent};

/// Where the bar draws: a fresh target per compute.
type MakeTarget = Arc<dyn Fn() -> ProgressDrawTarget + Send + Sync>;

/// A progress bar over a compute's tasks, like Dask's `with ProgressBar():`.
///
/// Register it around the computes to watch; it draws on stderr (nothing when
/// stderr is not a terminal) once the compute has run for `minimum`:
///
/// ```
/// use dask_core::diagnostics::ProgressBar;
/// use dask_core::{delayed, Collection};
/// # use dask_sync_scheduler as _;
/// let bar = ProgressBar::new();
/// let guard = bar.register();
/// let x = delayed(|a: i64| a * 2).call((21,));
/// assert_eq!(x.compute().unwrap(), 42);
/// drop(guard);
/// assert_eq!(bar.counts(), Some((1, 1)));
/// ```
#[derive(Clone)]
pub struct ProgressBar {
    inner: Arc<Inner>,
}

struct Inner {
    minimum: Duration,
    target: MakeTarget,
    current: Mutex<Option<Current>>,
}

struct Current {
    bar: indicatif::ProgressBar,
    info: RunInfo,
    shown: bool,
}

impl std::fmt::Debug for ProgressBar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProgressBar")
            .field("minimum", &self.inner.minimum)
            .field("counts", &self.counts())
            .finish()
    }
}

impl Default for ProgressBar {
    fn default() -> Self {
        ProgressBar::new()
    }
}

impl ProgressBar {
    /// A bar on stderr, shown at once.
    pub fn new() -> ProgressBar {
        ProgressBar::with_target(Duration::ZERO, ProgressDrawTarget::stderr)
    }

    /// A bar drawn on the target `make_target` returns (one per compute), shown
    /// only once a compute has run for `minimum` (Dask's `minimum=`).
    pub fn with_target(
        minimum: Duration,
        make_target: impl Fn() -> ProgressDrawTarget + Send + Sync + 'static,
    ) -> ProgressBar {
        ProgressBar {
            inner: Arc::new(Inner {
                minimum,
                target: Arc::new(make_target),
                current: Mutex::new(None),
            }),
        }
    }

    /// The same bar, shown only for computes running longer than `minimum`.
    pub fn minimum(self, minimum: Duration) -> ProgressBar {
        let target = self.inner.target.clone();
        ProgressBar::with_target(minimum, move || target())
    }

    /// Activates the bar for computes started on this thread while the guard lives.
    pub fn register(&self) -> CallbackGuard {
        callbacks::register(Arc::new(self.clone()))
    }

    /// `(finished, total)` tasks of the current or last compute, if any ran.
    pub fn counts(&self) -> Option<(u64, u64)> {
        let current = self.lock();
        let c = current.as_ref()?;
        Some((c.bar.position(), c.bar.length().unwrap_or(0)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Current>> {
        self.inner
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

fn style() -> ProgressStyle {
    // A fixed template: it parses, so the fallback is never used.
    ProgressStyle::with_template("[{bar:40}] | {percent:>3}% Completed | {elapsed_precise}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("#  ")
}

impl Callback for ProgressBar {
    fn start(&self, info: &RunInfo) {
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(info.n_tasks as u64),
            ProgressDrawTarget::hidden(),
        )
        .with_style(style());
        let mut current = self.lock();
        let shown = self.inner.minimum.is_zero();
        if shown {
            bar.set_draw_target((self.inner.target)());
        }
        *current = Some(Current {
            bar,
            info: info.clone(),
            shown,
        });
    }

    fn posttask(&self, _task: &TaskEvent<'_>, _ok: bool) {
        let mut current = self.lock();
        let Some(c) = current.as_mut() else { return };
        if !c.shown && c.info.started.elapsed() >= self.inner.minimum {
            c.bar.set_draw_target((self.inner.target)());
            c.shown = true;
        }
        c.bar.inc(1);
    }

    fn finish(&self, _info: &RunInfo, ok: bool) {
        let current = self.lock();
        let Some(c) = current.as_ref() else { return };
        if ok {
            c.bar.finish();
        } else {
            c.bar.abandon();
        }
    }
}
