//! `Delayed`: functions, closures, literals, `&Delayed` and `Delayed`
//! arguments, `try_delayed`, `from_graph` over a hand-built graph, `map`.

use std::sync::Arc;

use dask_core::op::fn_op;
use dask_core::{
    delayed, try_delayed, Arg, Collection, Delayed, Error, Graph, HighLevelGraph, Key, Scheduler,
    Task, Value,
};

fn inc(x: i64) -> i64 {
    x + 1
}

fn add(a: i64, b: i64) -> i64 {
    a + b
}

fn six(a: i64, b: u8, c: String, d: Vec<i64>, e: bool, f: f64) -> String {
    format!("{a}-{b}-{c}-{}-{e}-{f}", d.len())
}

#[derive(Debug)]
struct NotPositive(i64);

impl std::fmt::Display for NotPositive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is not positive", self.0)
    }
}

impl std::error::Error for NotPositive {}

fn checked_sqrt(x: i64) -> Result<i64, NotPositive> {
    if x > 0 {
        Ok((x as f64).sqrt() as i64)
    } else {
        Err(NotPositive(x))
    }
}

dask_testing::scheduler_test! {
    fn lists_of_delayed_values_as_vec_arguments(s: &dyn Scheduler) {
        let xs: Vec<Delayed<i64>> = (0..30).map(|i| delayed(inc).call((i,))).collect();
        let total = delayed(|v: Vec<i64>| v.iter().sum::<i64>());
        // By reference (the list stays usable), as a slice, by value.
        let a = total.call((&xs,));
        let b = total.call((&xs[..10],));
        let squares = delayed(|v: Vec<i64>| v.iter().map(|x| x * x).collect::<Vec<i64>>());
        let c = squares.call((xs.clone(),));
        let want: Vec<i64> = (0..30).map(inc).collect();
        assert_eq!(a.compute_with(s).unwrap(), want.iter().sum::<i64>());
        assert_eq!(b.compute_with(s).unwrap(), want[..10].iter().sum::<i64>());
        let sq: Vec<i64> = want.iter().map(|x| x * x).collect();
        assert_eq!(c.compute_with(s).unwrap(), sq);
        // An empty list is an empty Vec.
        let none: Vec<Delayed<i64>> = Vec::new();
        assert_eq!(total.call((none,)).compute_with(s).unwrap(), 0);
        // A failing element fails the call, naming the element's task.
        let bad = delayed(|x: i64| -> i64 { panic!("element {x}") }).call((7,));
        let err = total.call((vec![xs[0].clone(), bad],)).compute_with(s).unwrap_err();
        assert!(err.to_string().contains("element 7"), "{err}");
    }

    fn functions_with_literal_and_delayed_args(s: &dyn Scheduler) {
        let a = delayed(inc).call((1,));
        let b = delayed(inc).call((10,));
        // &Delayed twice, then a Delayed by value, then a literal.
        let c = delayed(add).call((&a, &b));
        let d = delayed(add).call((c, 100));
        assert_eq!(d.compute_with(s).unwrap(), add(add(inc(1), inc(10)), 100));
        // The inputs stay usable after being borrowed.
        assert_eq!(a.compute_with(s).unwrap(), inc(1));
        assert_eq!(b.compute_with(s).unwrap(), inc(10));
    }

    fn closures_capture_their_environment(s: &dyn Scheduler) {
        let factor = 7i64;
        let offset = String::from("id-");
        let scaled = delayed(move |x: i64| x * factor).call((6,));
        let label = delayed(move |x: i64| format!("{offset}{x}")).call((&scaled,));
        assert_eq!(label.compute_with(s).unwrap(), format!("id-{}", 6 * factor));
    }

    fn zero_and_six_arguments(s: &dyn Scheduler) {
        let zero = delayed(|| 42u32).call(());
        assert_eq!(zero.compute_with(s).unwrap(), 42);
        let c = Delayed::value(String::from("mid"));
        let v = delayed(|n: i64| (0..n).collect::<Vec<i64>>()).call((4,));
        let out = delayed(six).call((1i64, 2u8, &c, &v, true, 0.5f64));
        let expected = six(1, 2, "mid".into(), (0..4).collect(), true, 0.5);
        assert_eq!(out.compute_with(s).unwrap(), expected);
    }

    fn delayed_values_are_literals(s: &dyn Scheduler) {
        let v = Delayed::value(vec![3u64, 4, 5]);
        assert_eq!(v.compute_with(s).unwrap(), vec![3, 4, 5]);
        let total = delayed(|xs: Vec<u64>| xs.iter().sum::<u64>()).call((&v,));
        assert_eq!(total.compute_with(s).unwrap(), 12);
    }

    fn map_applies_a_function(s: &dyn Scheduler) {
        let x = Delayed::value(20i64);
        let y = x.map(|v| v * 2).map(|v| v.to_string()).map(|s: String| s.len());
        assert_eq!(y.compute_with(s).unwrap(), (20i64 * 2).to_string().len());
    }

    fn try_delayed_ok_and_err(s: &dyn Scheduler) {
        let ok = try_delayed(checked_sqrt).call((49,));
        assert_eq!(ok.compute_with(s).unwrap(), 7);
        let bad = try_delayed(checked_sqrt).call((-4,));
        let err = bad.compute_with(s).unwrap_err();
        let Error::TaskFailed { key, op, message, source } = &err else {
            panic!("expected TaskFailed, got {err:?}");
        };
        assert_eq!(key, bad.key());
        assert_eq!(op, "checked_sqrt");
        assert_eq!(message, &NotPositive(-4).to_string());
        let cause = source.downcast_ref::<NotPositive>().expect("the op's own error is the source");
        assert_eq!(cause.0, -4);
        // A dependent of a failed task does not run; the failure is reported.
        let after = delayed(inc).call((&bad,));
        let err = after.compute_with(s).unwrap_err();
        assert!(err.to_string().contains("-4 is not positive"), "{err}");
    }

    fn from_graph_over_a_hand_built_graph(s: &dyn Scheduler) {
        let mut g = Graph::new();
        for i in 0..5u64 {
            g.insert_data(Key::new("x", [i]), Value::new(i as i64 * 3));
        }
        let sum = fn_op(|xs: Vec<Value>| {
            xs.iter().map(|v| *v.downcast_ref::<i64>().unwrap()).sum::<i64>()
        });
        let keys = (0..5u64).map(|i| Arg::Key(Key::new("x", [i]))).collect();
        g.insert(Key::named("total"), Task::new(sum, vec![Arg::List(keys)]));
        let expected: i64 = (0..5).map(|i| i * 3).sum();

        let total = Delayed::<i64>::from_graph(Key::named("total"), g.clone());
        assert_eq!(total.key(), &Key::named("total"));
        assert_eq!(total.compute_with(s).unwrap(), expected);
        // A hand-built graph mixes with delayed calls.
        let plus = delayed(add).call((&total, 1));
        assert_eq!(plus.compute_with(s).unwrap(), expected + 1);
        // Any key of the graph, also from a HighLevelGraph layer.
        let hlg = HighLevelGraph::from_layer("mine", g, &[]);
        let x3 = Delayed::<i64>::from_graph(Key::new("x", [3]), hlg);
        assert_eq!(x3.compute_with(s).unwrap(), 9);
    }

    fn shared_arc_values_pass_through(s: &dyn Scheduler) {
        let big = Arc::new(vec![1u8; 1000]);
        let d = Delayed::value(big.clone());
        let len = d.map(|v: Arc<Vec<u8>>| v.len());
        assert_eq!(len.compute_with(s).unwrap(), big.len());
    }

    fn long_delayed_chain(s: &dyn Scheduler) {
        // Deep enough that recursion anywhere (graph walk, fusion, drop) would
        // overflow a test thread's stack.
        let n = 20_000i64;
        let mut x = Delayed::value(0i64);
        for _ in 0..n {
            x = delayed(inc).call((x,));
        }
        assert_eq!(x.compute_with(s).unwrap(), n);
    }
}

#[test]
fn every_call_is_a_new_task() {
    let a = delayed(inc).call((1,));
    let b = delayed(inc).call((1,));
    assert_ne!(a.key(), b.key());
    assert!(a.key().name().starts_with("inc-"), "{}", a.key());
    let c = delayed(|x: i64| x).call((1,));
    assert!(c.key().name().starts_with("closure-"), "{}", c.key());
    // A delayed call's graph holds exactly the calls it depends on.
    let d = delayed(add).call((&a, &b));
    let g = d.graph().to_graph();
    let mut keys = g.sorted_keys();
    let mut expected = vec![a.key().clone(), b.key().clone(), d.key().clone()];
    keys.sort();
    expected.sort();
    assert_eq!(keys, expected);
}
