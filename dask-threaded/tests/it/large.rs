//! Very large graphs: a 100k-task flat graph and a 100k-long chain compute
//! correctly on the threaded scheduler, with no stack overflow.

use dask_core::op::fn_op;
use dask_core::{delayed, Arg, Collection, Delayed, Graph, Key, Scheduler, Task, Value};
use dask_testing::graphs::{chain, chain_expected, u64s};
use dask_testing::{test_timeout, within};
use dask_threaded::ThreadedScheduler;

const N: usize = 100_000;

fn f(i: u64) -> u64 {
    i.wrapping_mul(2_654_435_761) % 1_000_003
}

#[test]
fn flat_graph_of_100k_tasks() {
    within(test_timeout(), || {
        let s = ThreadedScheduler::with_threads(4).unwrap();
        let op = fn_op(f);
        let mut g = Graph::with_capacity(N + 1);
        let mut args = Vec::with_capacity(N);
        for i in 0..N as u64 {
            g.insert(
                Key::new("flat", [i]),
                Task::new(op.clone(), vec![Arg::value(i)]),
            );
            args.push(Arg::Key(Key::new("flat", [i])));
        }
        let sum = fn_op(|xs: Vec<Value>| {
            xs.iter()
                .map(|v| *v.downcast_ref::<u64>().unwrap())
                .sum::<u64>()
        });
        g.insert(Key::named("sum"), Task::new(sum, vec![Arg::List(args)]));
        let want: u64 = (0..N as u64).map(f).sum();
        let out = s.compute(&g, &[Key::named("sum")]).unwrap();
        assert_eq!(u64s(&out), vec![want]);
        // Every task as an output.
        let keys: Vec<Key> = (0..N as u64).map(|i| Key::new("flat", [i])).collect();
        let out = s.compute(&g, &keys).unwrap();
        assert_eq!(u64s(&out), (0..N as u64).map(f).collect::<Vec<_>>());
    });
}

#[test]
fn chain_of_100k_tasks() {
    within(test_timeout(), || {
        let (g, last) = chain(N);
        for threads in [1, 4] {
            let s = ThreadedScheduler::with_threads(threads).unwrap();
            let out = s.compute(&g, std::slice::from_ref(&last)).unwrap();
            assert_eq!(u64s(&out), vec![chain_expected(N)], "{threads} threads");
        }
    });
}

#[test]
fn delayed_chain_of_100k_calls() {
    // Through Collection::compute_with: graph building, culling, fusion and
    // dropping the chain must all be iterative.
    within(test_timeout(), || {
        let s = ThreadedScheduler::with_threads(2).unwrap();
        let mut x = Delayed::value(0u64);
        for i in 1..N as u64 {
            x = delayed(|prev: u64, i: u64| prev.wrapping_mul(31).wrapping_add(i)).call((x, i));
        }
        assert_eq!(x.compute_with(&s).unwrap(), chain_expected(N));
        drop(x);
    });
}
