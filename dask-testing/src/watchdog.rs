//! Watchdogs (no test may hang) and quiet output for intentional panics.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Once;
use std::time::Duration;

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// The text every deliberately panicking test op puts in its panic message;
/// [`silence_intentional_panics`] hides panics that contain it.
pub const INTENTIONAL_PANIC: &str = "intentional panic";

/// The time limit of a [`scheduler_test!`](crate::scheduler_test) or
/// [`check_property`] run: `DASK_TEST_TIMEOUT` seconds if set, else 120 s.
pub fn test_timeout() -> Duration {
    let secs = std::env::var("DASK_TEST_TIMEOUT")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(120);
    Duration::from_secs(secs)
}

/// Runs `f` on its own thread and returns its result; panics with a clear
/// message if it has not finished after `limit`, and re-raises `f`'s panic.
///
/// The thread is named after the calling thread (the test's name), so panic
/// messages name the test. A thread that overruns is left running: a hung
/// scheduler cannot be killed, but the test fails instead of hanging.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(dask_testing::within(Duration::from_secs(5), || 2 + 2), 4);
/// ```
pub fn within<T, F>(limit: Duration, f: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let name = std::thread::current()
        .name()
        .unwrap_or("unnamed test")
        .to_owned();
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            let _ = tx.send(catch_unwind(AssertUnwindSafe(f)));
        })
        .expect("could not spawn the watchdog's worker thread");
    match rx.recv_timeout(limit) {
        Ok(Ok(value)) => {
            let _ = handle.join();
            value
        }
        Ok(Err(payload)) => {
            let _ = handle.join();
            resume_unwind(payload)
        }
        Err(RecvTimeoutError::Timeout) => panic!(
            "watchdog: `{name}` did not finish within {limit:?}; it probably hangs (deadlock, \
             lost wake-up or endless loop). The stuck thread is left running. Set \
             DASK_TEST_TIMEOUT (seconds) to allow more time on a slow machine."
        ),
        Err(RecvTimeoutError::Disconnected) => {
            panic!("watchdog: `{name}` exited without a result (its thread died)")
        }
    }
}

/// Installs, once per process, a panic hook that prints nothing for panics
/// whose message contains [`INTENTIONAL_PANIC`]; every other panic goes to the
/// hook that was installed before (normally the default one).
pub fn silence_intentional_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&'static str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
            if message.is_some_and(|m| m.contains(INTENTIONAL_PANIC)) {
                return;
            }
            previous(info);
        }));
    });
}

/// Runs the property `test` on `cases` values of the strategy `make()` builds,
/// under a [`within`] watchdog of [`test_timeout`]; panics with proptest's
/// report (the minimal failing input) when the property fails.
///
/// `PROPTEST_CASES` in the environment overrides `cases`; shrinking stops
/// after 20,000 iterations or 30 s unless `PROPTEST_MAX_SHRINK_ITERS` /
/// `PROPTEST_MAX_SHRINK_TIME` say otherwise. Failures are not persisted to
/// files; the report prints the minimal failing input. Intentional panics are
/// silenced ([`silence_intentional_panics`]).
pub fn check_property<S, M, T>(cases: u32, make: M, test: T)
where
    S: Strategy,
    M: FnOnce() -> S + Send + 'static,
    T: Fn(S::Value) -> Result<(), TestCaseError> + Send + 'static,
{
    silence_intentional_panics();
    within(test_timeout(), move || {
        let cases = std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(cases);
        let defaults = Config::default();
        let set = |var: &str| std::env::var_os(var).is_some();
        let config = Config {
            cases,
            failure_persistence: None,
            // Shrink big graphs further than proptest's default (4 x cases
            // iterations), within a time budget that fits the watchdog.
            max_shrink_iters: if set("PROPTEST_MAX_SHRINK_ITERS") {
                defaults.max_shrink_iters
            } else {
                20_000
            },
            max_shrink_time: if set("PROPTEST_MAX_SHRINK_TIME") {
                defaults.max_shrink_time
            } else {
                30_000
            },
            ..defaults
        };
        let mut runner = TestRunner::new(config);
        if let Err(e) = runner.run(&make(), test) {
            panic!("property failed: {e}");
        }
    })
}
