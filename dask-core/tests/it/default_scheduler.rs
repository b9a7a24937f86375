//! Which scheduler `compute()` uses, in this order: an explicit
//! `compute_with`, then `scheduler::scoped`, then `scheduler::set_global`, then
//! the best linked scheduler crate (threaded over sync). Also
//! `scheduler::by_name`.
//!
//! `set_global` is process-wide, so every assertion that needs it lives in ONE
//! test, which restores the global default even when it fails. Other tests of
//! this binary only use `compute()` where any scheduler gives the right answer.

use std::sync::{Arc, Mutex};

use dask_core::scheduler::{self, by_name, clear_global, default_scheduler, scoped, set_global};
use dask_core::{
    compute, delayed, reference, Collection, Error, Graph, Key, Result, Scheduler, Value,
};
use dask_testing::{test_timeout, within};

/// A scheduler that records the outputs it was asked for and evaluates with
/// the reference evaluator.
struct Recording {
    name: &'static str,
    seen: Mutex<Vec<Key>>,
}

impl Recording {
    fn new(name: &'static str) -> Arc<Recording> {
        Arc::new(Recording {
            name,
            seen: Mutex::new(Vec::new()),
        })
    }

    fn saw(&self, key: &Key) -> bool {
        self.seen.lock().unwrap().contains(key)
    }
}

impl Scheduler for Recording {
    fn name(&self) -> &str {
        self.name
    }

    fn compute(&self, graph: &Graph, outputs: &[Key]) -> Result<Vec<Value>> {
        self.seen.lock().unwrap().extend(outputs.iter().cloned());
        reference::get(graph, outputs)
    }
}

/// Clears the global default when dropped, also when the test panics.
struct RestoreGlobal;

impl Drop for RestoreGlobal {
    fn drop(&mut self) {
        clear_global();
    }
}

#[test]
fn precedence_explicit_scoped_global_linked() {
    within(test_timeout(), precedence);
}

fn precedence() {
    let _restore = RestoreGlobal;
    let job = || delayed(|a: i64, b: i64| a * b).call((6, 7));

    // Nothing set: the highest-ranked linked crate, threaded over sync.
    assert_eq!(default_scheduler().unwrap().name(), "threaded");
    assert_eq!(job().compute().unwrap(), 42);

    // A global default wins over the linked one.
    let global = Recording::new("global");
    set_global(global.clone());
    assert_eq!(default_scheduler().unwrap().name(), "global");
    let x = job();
    assert_eq!(x.compute().unwrap(), 42);
    assert!(global.saw(x.key()), "compute() used the global default");
    let y = job();
    let z = delayed(|a: i64| a + 1).call((&y,));
    assert_eq!(compute((&y, &z)).unwrap(), (42, 43));
    assert!(
        global.saw(y.key()) && global.saw(z.key()),
        "dask_core::compute used it too"
    );

    {
        // A scope wins over the global default, on this thread only.
        let scoped_one = Recording::new("scoped");
        let _guard = scoped(scoped_one.clone());
        assert_eq!(default_scheduler().unwrap().name(), "scoped");
        let x = job();
        assert_eq!(x.compute().unwrap(), 42);
        assert!(scoped_one.saw(x.key()) && !global.saw(x.key()));
        let other_thread = std::thread::spawn(|| default_scheduler().unwrap().name().to_owned());
        assert_eq!(
            other_thread.join().unwrap(),
            "global",
            "scopes are per thread"
        );

        {
            // Scopes nest.
            let inner = Recording::new("inner");
            let _inner_guard = scoped(inner.clone());
            assert_eq!(default_scheduler().unwrap().name(), "inner");
            let x = job();
            assert_eq!(x.compute().unwrap(), 42);
            assert!(inner.saw(x.key()) && !scoped_one.saw(x.key()));
        }
        assert_eq!(default_scheduler().unwrap().name(), "scoped");

        // An explicit scheduler wins over everything.
        let explicit = Recording::new("explicit");
        let x = job();
        assert_eq!(x.compute_with(&*explicit).unwrap(), 42);
        assert!(explicit.saw(x.key()) && !scoped_one.saw(x.key()) && !global.saw(x.key()));
        let by_name_sync = by_name("sync").unwrap();
        assert_eq!(job().compute_with(&*by_name_sync).unwrap(), 42);
    }
    // The scope ended: back to the global default.
    assert_eq!(default_scheduler().unwrap().name(), "global");

    clear_global();
    assert_eq!(default_scheduler().unwrap().name(), "threaded");
    assert_eq!(job().compute().unwrap(), 42);
}

#[test]
fn by_name_finds_linked_schedulers_and_aliases() {
    within(test_timeout(), by_name_checks);
}

fn by_name_checks() {
    assert_eq!(by_name("sync").unwrap().name(), "sync");
    assert_eq!(by_name("synchronous").unwrap().name(), "sync");
    assert_eq!(by_name("threaded").unwrap().name(), "threaded");
    assert_eq!(by_name("threads").unwrap().name(), "threaded");
    let x = delayed(|a: u8| a.to_string()).call((9,));
    for name in ["sync", "threads"] {
        assert_eq!(x.compute_with(&*by_name(name).unwrap()).unwrap(), "9");
    }
    match by_name("processes") {
        Err(Error::NoScheduler { hint }) => {
            assert!(hint.contains("processes"), "{hint}");
            assert!(
                hint.contains("sync") && hint.contains("threaded"),
                "lists the linked ones: {hint}"
            );
        }
        Err(other) => panic!("expected NoScheduler, got {other:?}"),
        Ok(s) => panic!("`processes` is not linked, got {}", s.name()),
    }
    let err = by_name("").err().expect("empty name");
    assert!(matches!(err, Error::NoScheduler { .. }), "{err:?}");
    // The shared instances are usable as defaults in a scope.
    let _guard = scoped(by_name("sync").unwrap());
    assert_eq!(scheduler::default_scheduler().unwrap().name(), "sync");
}
