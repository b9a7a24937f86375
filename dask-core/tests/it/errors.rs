//! Every typed error, on every scheduler: bad graphs (cycle, missing
//! dependency, missing output, no outputs), failing and panicking tasks (key,
//! op, message, source chain), wrong types. Each error is also checked against
//! the reference evaluator, which must agree.

use std::error::Error as _;
use std::fmt;

use dask_core::op::{fn_op, try_fn_op};
use dask_core::{
    delayed, reference, Arg, Collection, Delayed, Error, Graph, Key, Panicked, Scheduler, Task,
    Value,
};

fn k(name: &str) -> Key {
    Key::named(name)
}

fn inc_op() -> std::sync::Arc<dyn dask_core::Op> {
    fn_op(|x: i64| x + 1)
}

/// `a -> b -> c -> a` (each reads the next), plus an unrelated `ok`.
fn cyclic() -> Graph {
    let mut g = Graph::new();
    g.insert(k("a"), Task::new(inc_op(), vec![Arg::Key(k("b"))]));
    g.insert(k("b"), Task::new(inc_op(), vec![Arg::Key(k("c"))]));
    g.insert(k("c"), Task::new(inc_op(), vec![Arg::Key(k("a"))]));
    g.insert_data(k("ok"), Value::new(1i64));
    g
}

/// Checks a cycle error lists a real cycle: first key repeated at the end, each
/// key read by the one before it, covering `expected`.
fn check_cycle(err: &Error, graph: &Graph, expected: &[&str]) {
    let Error::Cycle { keys } = err else {
        panic!("expected a Cycle error, got {err:?}");
    };
    assert!(keys.len() >= 2, "{keys:?}");
    assert_eq!(keys.first(), keys.last(), "the cycle closes: {keys:?}");
    for pair in keys.windows(2) {
        let deps = graph.get(&pair[0]).unwrap().dependencies();
        assert!(
            deps.contains(&pair[1]),
            "{} does not read {}: {keys:?}",
            pair[0],
            pair[1]
        );
    }
    for name in expected {
        assert!(keys.contains(&k(name)), "{name} missing from {keys:?}");
    }
    let msg = err.to_string();
    for name in expected {
        assert!(msg.contains(&format!("'{name}'")), "{msg}");
    }
}

#[derive(Debug)]
struct Inner;

impl fmt::Display for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "disk on fire")
    }
}

impl std::error::Error for Inner {}

#[derive(Debug)]
struct Outer(Inner);

impl fmt::Display for Outer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "could not load block")
    }
}

impl std::error::Error for Outer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

fn load(x: i64) -> Result<i64, Outer> {
    if x < 0 {
        Err(Outer(Inner))
    } else {
        Ok(x)
    }
}

fn explode(_x: i64) -> i64 {
    panic!("intentional panic: exploded")
}

/// A graph where `fails` (reading `x`) fails, `dependent` reads `fails`, and
/// `fine` does not need it.
fn failing_graph() -> Graph {
    let mut g = Graph::new();
    g.insert_data(k("x"), Value::new(-1i64));
    g.insert(
        k("fails"),
        Task::new(try_fn_op(load), vec![Arg::Key(k("x"))]),
    );
    g.insert(
        k("dependent"),
        Task::new(inc_op(), vec![Arg::Key(k("fails"))]),
    );
    g.insert(k("fine"), Task::new(inc_op(), vec![Arg::value(41i64)]));
    g
}

fn panicking_graph() -> Graph {
    let mut g = Graph::new();
    g.insert_data(k("x"), Value::new(1i64));
    g.insert(k("boom"), Task::new(fn_op(explode), vec![Arg::Key(k("x"))]));
    g.insert(k("after"), Task::new(inc_op(), vec![Arg::Key(k("boom"))]));
    g
}

dask_testing::scheduler_test! {
    fn cycle_lists_its_keys(s: &dyn Scheduler) {
        let g = cyclic();
        for out in [k("a"), k("b"), k("c")] {
            let err = s.compute(&g, std::slice::from_ref(&out)).unwrap_err();
            check_cycle(&err, &g, &["a", "b", "c"]);
            check_cycle(&reference::get(&g, &[out]).unwrap_err(), &g, &["a", "b", "c"]);
        }
        check_cycle(&g.validate().unwrap_err(), &g, &["a", "b", "c"]);
        // The acyclic part still computes.
        let out = s.compute(&g, &[k("ok")]).unwrap();
        assert_eq!(*out[0].downcast_ref::<i64>().unwrap(), 1);
    }

    fn self_cycle_and_cycle_below_an_output(s: &dyn Scheduler) {
        let mut g = Graph::new();
        g.insert(k("me"), Task::new(fn_op(|a: i64, b: i64| a + b), vec![Arg::value(1i64), Arg::Key(k("me"))]));
        check_cycle(&s.compute(&g, &[k("me")]).unwrap_err(), &g, &["me"]);
        // The cycle is reached through a nested task and a list.
        let mut g = cyclic();
        let sum = fn_op(|xs: Vec<Value>| xs.len());
        let nested = Task::new(fn_op(|v: Vec<Value>| v.len() as i64), vec![Arg::List(vec![Arg::Key(k("b"))])]);
        g.insert(k("top"), Task::new(sum, vec![Arg::List(vec![Arg::Key(k("ok")), Arg::Task(Box::new(nested))])]));
        let err = s.compute(&g, &[k("ok"), k("top")]).unwrap_err();
        check_cycle(&err, &g, &["a", "b", "c"]);
    }

    fn missing_dependency_names_both_keys(s: &dyn Scheduler) {
        let mut g = Graph::new();
        g.insert_data(k("x"), Value::new(1i64));
        g.insert(k("y"), Task::new(fn_op(|a: i64, b: i64| a + b), vec![Arg::Key(k("x")), Arg::Key(k("ghost"))]));
        g.insert(k("z"), Task::new(inc_op(), vec![Arg::Key(k("y"))]));
        for err in [s.compute(&g, &[k("z")]).unwrap_err(), reference::get(&g, &[k("z")]).unwrap_err(), g.validate().unwrap_err()] {
            match &err {
                Error::MissingDependency { key, missing } => {
                    assert_eq!((key, missing), (&k("y"), &k("ghost")));
                    let msg = err.to_string();
                    assert!(msg.contains("'y'") && msg.contains("'ghost'"), "{msg}");
                }
                other => panic!("expected MissingDependency, got {other:?}"),
            }
        }
        // Outputs that do not need the missing key still compute.
        let out = s.compute(&g, &[k("x")]).unwrap();
        assert_eq!(*out[0].downcast_ref::<i64>().unwrap(), 1);
    }

    fn missing_output_is_named(s: &dyn Scheduler) {
        let mut g = Graph::new();
        g.insert_data(k("x"), Value::new(1i64));
        for err in [s.compute(&g, &[k("x"), k("nope")]).unwrap_err(), reference::get(&g, &[k("x"), k("nope")]).unwrap_err()] {
            match &err {
                Error::MissingOutput { key } => assert_eq!(key, &k("nope")),
                other => panic!("expected MissingOutput, got {other:?}"),
            }
            assert!(err.to_string().contains("'nope'"), "{err}");
        }
        let err = s.compute(&Graph::new(), &[k("x")]).unwrap_err();
        assert!(matches!(err, Error::MissingOutput { ref key } if key == &k("x")), "{err:?}");
    }

    fn zero_outputs_is_an_error(s: &dyn Scheduler) {
        let mut g = Graph::new();
        g.insert_data(k("x"), Value::new(1i64));
        assert!(matches!(s.compute(&g, &[]), Err(Error::NoOutputs)));
        assert!(matches!(s.compute(&Graph::new(), &[]), Err(Error::NoOutputs)));
        assert!(matches!(reference::get(&g, &[]), Err(Error::NoOutputs)));
        assert!(matches!(s.persist(&g, &[]), Err(Error::NoOutputs)));
    }

    fn failing_task_reports_key_op_message_and_source_chain(s: &dyn Scheduler) {
        let g = failing_graph();
        for outputs in [vec![k("fails")], vec![k("dependent")], vec![k("fine"), k("dependent")]] {
            let err = s.compute(&g, &outputs).unwrap_err();
            let Error::TaskFailed { key, op, message, source } = &err else {
                panic!("expected TaskFailed, got {err:?}");
            };
            assert_eq!(key, &k("fails"));
            assert_eq!(op, "load");
            assert_eq!(message, "could not load block");
            assert_eq!(err.failed_key(), Some(&k("fails")));
            assert!(source.downcast_ref::<Outer>().is_some(), "the op's error is the source");
            // The chain: TaskFailed -> Outer -> Inner.
            let outer = err.source().expect("TaskFailed has a source");
            assert_eq!(outer.to_string(), "could not load block");
            let inner = outer.source().expect("Outer has a source");
            assert_eq!(inner.to_string(), "disk on fire");
            assert!(inner.source().is_none());
            let text = err.to_string();
            assert!(text.contains("'fails'") && text.contains("load") && text.contains("could not load block"), "{text}");
            // The reference evaluator agrees.
            let oracle = reference::get(&g, &outputs).unwrap_err();
            assert_eq!(oracle.failed_key(), Some(&k("fails")));
        }
        // Outputs that do not need the failing task compute.
        let out = s.compute(&g, &[k("fine")]).unwrap();
        assert_eq!(*out[0].downcast_ref::<i64>().unwrap(), 42);
    }

    fn panicking_task_is_a_failure_of_its_key(s: &dyn Scheduler) {
        let g = panicking_graph();
        for outputs in [vec![k("boom")], vec![k("after")], vec![k("x"), k("after")]] {
            let err = s.compute(&g, &outputs).unwrap_err();
            let Error::TaskFailed { key, op, message, source } = &err else {
                panic!("expected TaskFailed, got {err:?}");
            };
            assert_eq!(key, &k("boom"));
            assert_eq!(op, "explode");
            assert!(message.contains("intentional panic: exploded"), "{message}");
            let panicked = source.downcast_ref::<Panicked>().expect("a Panicked source");
            assert_eq!(panicked.message, "intentional panic: exploded");
        }
        // The scheduler survives the panic.
        let out = s.compute(&g, &[k("x")]).unwrap();
        assert_eq!(*out[0].downcast_ref::<i64>().unwrap(), 1);
    }

    fn panic_with_a_non_string_payload(s: &dyn Scheduler) {
        dask_testing::silence_intentional_panics();
        let mut g = Graph::new();
        g.insert(k("odd"), Task::new(fn_op(|| -> i64 { std::panic::panic_any(17u32) }), vec![]));
        let err = s.compute(&g, &[k("odd")]).unwrap_err();
        assert_eq!(err.failed_key(), Some(&k("odd")));
        assert!(err.to_string().contains("non-string panic payload"), "{err}");
    }

    fn failing_delayed_call(s: &dyn Scheduler) {
        let bad = dask_core::try_delayed(load).call((-5,));
        let err = bad.compute_with(s).unwrap_err();
        assert_eq!(err.failed_key(), Some(bad.key()));
        let boom = delayed(explode).call((1,));
        let err = boom.compute_with(s).unwrap_err();
        assert_eq!(err.failed_key(), Some(boom.key()));
        assert!(err.to_string().contains("intentional panic"), "{err}");
    }

    fn wrong_argument_type_and_arity_fail_the_task(s: &dyn Scheduler) {
        let mut g = Graph::new();
        g.insert_data(k("text"), Value::new(String::from("seven")));
        g.insert(k("typed"), Task::new(inc_op(), vec![Arg::Key(k("text"))]));
        g.insert(k("arity"), Task::new(inc_op(), vec![Arg::value(1i64), Arg::value(2i64)]));
        let err = s.compute(&g, &[k("typed")]).unwrap_err();
        assert_eq!(err.failed_key(), Some(&k("typed")));
        let msg = err.to_string();
        assert!(msg.contains("argument 0") && msg.contains("i64") && msg.contains("String"), "{msg}");
        let err = s.compute(&g, &[k("arity")]).unwrap_err();
        assert_eq!(err.failed_key(), Some(&k("arity")));
        assert!(err.to_string().contains("takes 1 arguments"), "{err}");
    }

    fn delayed_computed_as_the_wrong_type(s: &dyn Scheduler) {
        let mut g = Graph::new();
        g.insert_data(k("n"), Value::new(5i64));
        let wrong = Delayed::<String>::from_graph(k("n"), g.clone());
        match wrong.compute_with(s) {
            Err(Error::WrongType { expected, found }) => {
                assert_eq!(expected, std::any::type_name::<String>());
                assert_eq!(found, std::any::type_name::<i64>());
            }
            other => panic!("expected WrongType, got {other:?}"),
        }
        let right = Delayed::<i64>::from_graph(k("n"), g);
        assert_eq!(right.compute_with(s).unwrap(), 5);
    }
}

#[test]
fn value_downcast_to_the_wrong_type() {
    let v = Value::new(3u64);
    match v.downcast_ref::<i32>() {
        Err(Error::WrongType { expected, found }) => {
            assert_eq!((expected, found), ("i32", "u64"));
        }
        other => panic!("expected WrongType, got {other:?}"),
    }
    let err = v.clone().take::<String>().unwrap_err();
    assert!(
        err.to_string().contains("alloc::string::String") && err.to_string().contains("u64"),
        "{err}"
    );
    assert!(matches!(
        v.clone().downcast_arc::<u8>(),
        Err(Error::WrongType { .. })
    ));
    assert_eq!(*v.downcast_ref::<u64>().unwrap(), 3);
    assert!(v.is::<u64>() && !v.is::<i64>());
}
