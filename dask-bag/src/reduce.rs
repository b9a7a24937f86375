//! Reductions: a per-partition step fused into each partition's pipeline, then
//! a tree of combine steps (fan-in `split_every`), then a final step.

use std::any::TypeId;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use rustc_hash::FxHashMap as HashMap;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;

use dask_core::{Arg, BoxError, Delayed, Graph, HighLevelGraph, Key, Op, Task, Value};

use crate::bag::{new_name, Bag};
use crate::stage::{split_part, with_items, DynStage, Items};
use crate::wire::{MergeCounts, SumCounts, WordsPart, WordsReduction};
use crate::words::WordsStage;
use crate::{Error, Result};

/// Runs a per-partition reduction over a partition's pipeline.
struct PartOp<T, R, F> {
    name: String,
    stage: DynStage<T>,
    f: F,
    _r: PhantomData<fn() -> R>,
}

impl<T, R, F> Op for PartOp<T, R, F>
where
    T: 'static,
    R: Send + Sync + 'static,
    F: for<'a> Fn(usize, Items<'a, T>) -> Result<R> + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        let (part, args) = split_part(args)?;
        let r = with_items(&*self.stage, part, args, |items| (self.f)(part, items))??;
        Ok(Value::new(r))
    }
}

/// Combines the results of its dependencies (by reference: they are shared values).
struct AggOp<R, O, F> {
    name: String,
    f: F,
    _t: PhantomData<fn(R) -> O>,
}

impl<R, O, F> Op for AggOp<R, O, F>
where
    R: Send + Sync + 'static,
    O: Send + Sync + 'static,
    F: Fn(&[&R]) -> Result<O> + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        let parts = args
            .iter()
            .map(|v| v.downcast_ref::<R>())
            .collect::<dask_core::Result<Vec<&R>>>()?;
        Ok(Value::new((self.f)(&parts)?))
    }
}

impl<T: Clone + Send + Sync + 'static> Bag<T> {
    /// Builds the reduction graph: one layer named `name`, whose key `(name, 0)`
    /// holds the final `O`.
    fn tree<R, O, P, C, F>(
        &self,
        op: &str,
        per: P,
        combine: C,
        finish: F,
    ) -> (HighLevelGraph, Arc<str>)
    where
        R: Send + Sync + 'static,
        O: Send + Sync + 'static,
        P: for<'a> Fn(usize, Items<'a, T>) -> Result<R> + Send + Sync + 'static,
        C: Fn(&[&R]) -> Result<R> + Send + Sync + 'static,
        F: Fn(&[&R]) -> Result<O> + Send + Sync + 'static,
    {
        let src = self.source();
        let part_op: Arc<dyn Op> = Arc::new(PartOp {
            name: src.op_name(&format!("{op}-part")),
            stage: src.stage.clone(),
            f: per,
            _r: PhantomData,
        });
        let combine: Arc<dyn Op> = Arc::new(AggOp {
            name: format!("{op}-combine"),
            f: combine,
            _t: PhantomData,
        });
        let finish: Arc<dyn Op> = Arc::new(AggOp {
            name: format!("{op}-aggregate"),
            f: finish,
            _t: PhantomData,
        });
        self.tree_with(op, part_op, combine, finish)
    }

    /// [`Bag::tree`] with its ops given: `part_op` gets the partition index
    /// and the pipeline's arguments; `combine` and `finish` get results.
    fn tree_with(
        &self,
        op: &str,
        part_op: Arc<dyn Op>,
        combine: Arc<dyn Op>,
        finish: Arc<dyn Op>,
    ) -> (HighLevelGraph, Arc<str>) {
        let src = self.source();
        let name = new_name(op);
        let part_name: Arc<str> = format!("{name}-part").into();
        let agg_name: Arc<str> = format!("{name}-agg").into();
        let mut graph = Graph::with_capacity(self.npartitions * 2);
        let mut level: Vec<Key> = (0..self.npartitions)
            .map(|i| {
                let k = Key::new(part_name.clone(), [i as u64]);
                graph.insert(k.clone(), src.task(part_op.clone(), i));
                k
            })
            .collect();
        let agg_op = combine;
        let mut depth = 0u64;
        while level.len() > self.split_every {
            level = level
                .chunks(self.split_every)
                .enumerate()
                .map(|(i, group)| {
                    let k = Key::new(agg_name.clone(), [depth, i as u64]);
                    let args = group.iter().cloned().map(Arg::Key).collect();
                    graph.insert(k.clone(), Task::new(agg_op.clone(), args));
                    k
                })
                .collect();
            depth += 1;
        }
        let final_op = finish;
        graph.insert(
            Key::new(name.clone(), [0]),
            Task::new(final_op, level.into_iter().map(Arg::Key).collect()),
        );
        (
            HighLevelGraph::from_layer(name.clone(), graph, &[&src.graph]),
            name,
        )
    }

    fn scalar<R, O, P, C, F>(&self, op: &str, per: P, combine: C, finish: F) -> Delayed<O>
    where
        R: Send + Sync + 'static,
        O: Clone + Send + Sync + 'static,
        P: for<'a> Fn(usize, Items<'a, T>) -> Result<R> + Send + Sync + 'static,
        C: Fn(&[&R]) -> Result<R> + Send + Sync + 'static,
        F: Fn(&[&R]) -> Result<O> + Send + Sync + 'static,
    {
        let (graph, name) = self.tree(op, per, combine, finish);
        Delayed::from_graph(Key::new(name, [0]), graph)
    }

    fn to_bag<R, U, P, C, F>(&self, op: &str, per: P, combine: C, finish: F) -> Bag<U>
    where
        R: Send + Sync + 'static,
        U: Clone + Send + Sync + 'static,
        P: for<'a> Fn(usize, Items<'a, T>) -> Result<R> + Send + Sync + 'static,
        C: Fn(&[&R]) -> Result<R> + Send + Sync + 'static,
        F: Fn(&[&R]) -> Result<Vec<U>> + Send + Sync + 'static,
    {
        let (graph, name) = self.tree(op, per, combine, finish);
        let mut bag = Bag::materialized(graph, name, 1);
        bag.split_every = self.split_every;
        bag
    }

    /// Dask's `reduction`: `perpartition` reduces each partition's items,
    /// `aggregate` combines a list of such results, at every level of a tree of
    /// fan-in `split_every` (see [`Bag::with_split_every`]), so it must accept
    /// its own outputs as inputs.
    ///
    /// ```
    /// use dask_bag::Bag;
    /// use dask_core::Collection;
    /// # use dask_sync_scheduler as _;
    /// let b = Bag::from_sequence(1..=10i64, 3).unwrap();
    /// let total = b.reduction(|items| items.sum::<i64>(), |sums| sums.into_iter().sum());
    /// assert_eq!(total.compute().unwrap(), 55);
    /// ```
    pub fn reduction<R, P, A>(&self, perpartition: P, aggregate: A) -> Delayed<R>
    where
        R: Clone + Send + Sync + 'static,
        P: for<'a> Fn(Items<'a, T>) -> R + Send + Sync + 'static,
        A: Fn(Vec<R>) -> R + Send + Sync + 'static,
    {
        let aggregate = Arc::new(aggregate);
        let a2 = aggregate.clone();
        self.scalar(
            "reduction",
            move |_, items| Ok(perpartition(items)),
            move |rs| Ok(aggregate(rs.iter().map(|r| (*r).clone()).collect())),
            move |rs| Ok(a2(rs.iter().map(|r| (*r).clone()).collect())),
        )
    }

    /// Folds each partition from `initial` with `binop`, then merges the
    /// partitions' results with `combine` (which must be associative, with
    /// `initial` as identity).
    pub fn fold<A, B, C>(&self, initial: A, binop: B, combine: C) -> Delayed<A>
    where
        A: Clone + Send + Sync + 'static,
        B: Fn(A, T) -> A + Send + Sync + 'static,
        C: Fn(A, A) -> A + Send + Sync + 'static,
    {
        let combine = Arc::new(combine);
        let c2 = combine.clone();
        let merge = move |c: &C, rs: &[&A]| {
            let mut it = rs.iter().map(|r| (*r).clone());
            let first = it.next();
            first.map(|f| it.fold(f, c))
        };
        let init2 = initial.clone();
        self.scalar(
            "fold",
            move |_, items| Ok(items.fold(initial.clone(), &binop)),
            move |rs| merge(&combine, rs).ok_or_else(|| empty_agg("fold")),
            move |rs| Ok(merge(&c2, rs).unwrap_or_else(|| init2.clone())),
        )
    }

    /// The number of items.
    ///
    /// After `flat_map(words)` the words are counted borrowed, without a
    /// `String` per word (see [`words`](crate::words)).
    pub fn count(&self) -> Delayed<usize> {
        if let Some(ws) = self.words_stage() {
            let part_op = self.words_part_op("count", &ws, WordsReduction::Count);
            let sum = |step: &str| -> Arc<dyn Op> {
                Arc::new(SumCounts {
                    name: format!("count-{step}"),
                })
            };
            let (graph, name) = self.tree_with("count", part_op, sum("combine"), sum("aggregate"));
            return Delayed::from_graph(Key::new(name, [0]), graph);
        }
        self.scalar(
            "count",
            |_, items| Ok(items.count()),
            |rs| Ok(rs.iter().copied().sum()),
            |rs| Ok(rs.iter().copied().sum()),
        )
    }

    /// The sum of the items (`T::sum` of nothing for an empty bag).
    pub fn sum(&self) -> Delayed<T>
    where
        T: std::iter::Sum<T>,
    {
        fn add<T: Clone + std::iter::Sum<T>>(rs: &[&T]) -> Result<T> {
            Ok(rs.iter().map(|r| (*r).clone()).sum())
        }
        self.scalar("sum", |_, items| Ok(items.sum()), add, add)
    }

    /// The smallest item. Computing it fails with [`Error::Empty`] for an empty bag.
    pub fn min(&self) -> Delayed<T>
    where
        T: Ord,
    {
        self.extremum("min", |a, b| a <= b)
    }

    /// The largest item. Computing it fails with [`Error::Empty`] for an empty bag.
    pub fn max(&self) -> Delayed<T>
    where
        T: Ord,
    {
        self.extremum("max", |a, b| a >= b)
    }

    fn extremum(&self, op: &'static str, keep_first: fn(&T, &T) -> bool) -> Delayed<T> {
        let pick = move |rs: &[&Option<T>]| {
            rs.iter()
                .filter_map(|r| r.as_ref())
                .fold(None::<&T>, |best, x| match best {
                    Some(b) if keep_first(b, x) => Some(b),
                    _ => Some(x),
                })
                .cloned()
        };
        self.scalar(
            op,
            move |_, items| {
                Ok(items.fold(None, |best: Option<T>, x| match best {
                    Some(b) if keep_first(&b, &x) => Some(b),
                    _ => Some(x),
                }))
            },
            move |rs| Ok(pick(rs)),
            move |rs| pick(rs).ok_or(Error::Empty { op }),
        )
    }

    /// The arithmetic mean of the items, as `f64`. Computing it fails with
    /// [`Error::Empty`] for an empty bag.
    pub fn mean(&self) -> Delayed<f64>
    where
        T: AsF64,
    {
        fn add(rs: &[&(f64, usize)]) -> (f64, usize) {
            rs.iter()
                .fold((0.0, 0), |(s, n), (s2, n2)| (s + s2, n + n2))
        }
        self.scalar(
            "mean",
            |_, items| Ok(items.fold((0.0, 0usize), |(s, n), x| (s + x.as_f64(), n + 1))),
            |rs| Ok(add(rs)),
            |rs| match add(rs) {
                (_, 0) => Err(Error::Empty { op: "mean" }),
                (s, n) => Ok(s / n as f64),
            },
        )
    }

    /// How often each distinct item occurs: a one-partition bag of
    /// `(item, count)` pairs, in no particular order.
    ///
    /// After `flat_map(words)` (see [`words`](crate::words)) each partition
    /// counts borrowed words and allocates a `String` only for a word new to
    /// its partition; under [`read_text`](crate::read_text) the text is read
    /// in blocks of whole lines, without a `String` per line. Same answer.
    pub fn frequencies(&self) -> Bag<(T, usize)>
    where
        T: Hash + Eq,
    {
        if let Some(ws) = self.words_stage() {
            // `as_words` is only `Some` for a `Stage<String>`: T is String.
            debug_assert_eq!(TypeId::of::<T>(), TypeId::of::<String>());
            let part_op = self.words_part_op("frequencies", &ws, WordsReduction::Frequencies);
            let merge = |step: &str, last| -> Arc<dyn Op> {
                Arc::new(MergeCounts {
                    name: format!("frequencies-{step}"),
                    last,
                })
            };
            let (graph, name) = self.tree_with(
                "frequencies",
                part_op,
                merge("combine", false),
                merge("aggregate", true),
            );
            let mut bag = Bag::materialized(graph, name, 1);
            bag.split_every = self.split_every;
            return bag;
        }
        self.to_bag(
            "frequencies",
            |_, items| {
                let mut counts: HashMap<T, usize> = HashMap::default();
                for x in items {
                    *counts.entry(x).or_insert(0) += 1;
                }
                Ok(counts)
            },
            |rs| Ok(merge_counts(rs)),
            |rs| Ok(merge_counts(rs).into_iter().collect()),
        )
    }

    /// The distinct items, each once, in order of first occurrence (a
    /// one-partition bag).
    pub fn distinct(&self) -> Bag<T>
    where
        T: Hash + Eq,
    {
        type Firsts<T> = HashMap<T, (usize, usize)>;
        fn merge<T: Clone + Hash + Eq>(rs: &[&Firsts<T>]) -> Firsts<T> {
            let mut out = Firsts::default();
            for r in rs {
                for (k, &pos) in r.iter() {
                    match out.get_mut(k) {
                        Some(p) if *p <= pos => {}
                        Some(p) => *p = pos,
                        None => {
                            out.insert(k.clone(), pos);
                        }
                    }
                }
            }
            out
        }
        self.to_bag(
            "distinct",
            |part, items| {
                let mut firsts = Firsts::default();
                for (i, x) in items.enumerate() {
                    firsts.entry(x).or_insert((part, i));
                }
                Ok(firsts)
            },
            |rs| Ok(merge(rs)),
            |rs| {
                let mut all: Vec<(T, (usize, usize))> = merge(rs).into_iter().collect();
                all.sort_unstable_by_key(|(_, pos)| *pos);
                Ok(all.into_iter().map(|(x, _)| x).collect())
            },
        )
    }

    /// The `k` items with the largest `key`, largest first (a one-partition
    /// bag). Ties are broken by position: of equal keys, the item earlier in the
    /// bag comes first, so the result equals a stable sort by descending key
    /// followed by `take(k)`.
    ///
    /// Errors: [`Error::InvalidArgument`] if `k` is 0 (Dask returns an empty bag;
    /// asking for nothing is taken to be a mistake here).
    pub fn topk<K, F>(&self, k: usize, key: F) -> Result<Bag<T>>
    where
        K: Ord + Clone + Send + Sync + 'static,
        F: Fn(&T) -> K + Send + Sync + 'static,
    {
        if k == 0 {
            return Err(Error::invalid(
                "k",
                "topk(0, ..) asks for no item: pass k >= 1",
            ));
        }
        fn merge<K: Ord + Clone, T: Clone>(
            rs: &[&Vec<Ranked<K, T>>],
            k: usize,
        ) -> Vec<Ranked<K, T>> {
            let mut all: Vec<Ranked<K, T>> = rs.iter().flat_map(|r| r.iter().cloned()).collect();
            all.sort_unstable_by(|a, b| b.cmp(a));
            all.truncate(k);
            all
        }
        Ok(self.to_bag(
            "topk",
            move |part, items| {
                let mut heap: BinaryHeap<Reverse<Ranked<K, T>>> = BinaryHeap::with_capacity(k + 1);
                for (i, x) in items.enumerate() {
                    let r = Ranked {
                        key: key(&x),
                        pos: (part, i),
                        item: x,
                    };
                    if heap.len() < k {
                        heap.push(Reverse(r));
                    } else if heap.peek().is_some_and(|Reverse(min)| r > *min) {
                        heap.pop();
                        heap.push(Reverse(r));
                    }
                }
                let mut out: Vec<Ranked<K, T>> = heap.into_iter().map(|Reverse(r)| r).collect();
                out.sort_unstable_by(|a, b| b.cmp(a));
                Ok(out)
            },
            move |rs| Ok(merge(rs, k)),
            move |rs| Ok(merge(rs, k).into_iter().map(|r| r.item).collect()),
        ))
    }

    /// Reduction by key (Dask's `foldby`, preferred over [`Bag::groupby`]):
    /// within each partition, the items of each key are folded from `initial`
    /// with `binop`; the per-key results of all partitions are merged with
    /// `combine` in a tree. A one-partition bag of `(key, value)` pairs, in no
    /// particular order.
    pub fn foldby<K, A, KF, B, C>(&self, key: KF, initial: A, binop: B, combine: C) -> Bag<(K, A)>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        A: Clone + Send + Sync + 'static,
        KF: Fn(&T) -> K + Send + Sync + 'static,
        B: Fn(A, T) -> A + Send + Sync + 'static,
        C: Fn(A, A) -> A + Send + Sync + 'static,
    {
        let combine = Arc::new(combine);
        let c2 = combine.clone();
        fn merge<K: Hash + Eq + Clone, A: Clone>(
            rs: &[&HashMap<K, A>],
            combine: &dyn Fn(A, A) -> A,
        ) -> HashMap<K, A> {
            let mut out: HashMap<K, A> = HashMap::default();
            for r in rs {
                for (k, a) in r.iter() {
                    match out.remove_entry(k) {
                        Some((k, acc)) => {
                            out.insert(k, combine(acc, a.clone()));
                        }
                        None => {
                            out.insert(k.clone(), a.clone());
                        }
                    }
                }
            }
            out
        }
        self.to_bag(
            "foldby",
            move |_, items| {
                let mut accs: HashMap<K, A> = HashMap::default();
                for x in items {
                    let slot = accs.entry(key(&x)).or_insert_with(|| initial.clone());
                    let acc = std::mem::replace(slot, initial.clone());
                    *slot = binop(acc, x);
                }
                Ok(accs)
            },
            move |rs| Ok(merge(rs, &*combine)),
            move |rs| Ok(merge(rs, &*c2).into_iter().collect()),
        )
    }
}

impl<T: Clone + Send + Sync + 'static> Bag<T> {
    /// The pending `flat_map(words)` step this bag ends with, if any.
    fn words_stage(&self) -> Option<WordsStage> {
        self.pending.as_ref()?.stage.as_words().cloned()
    }

    /// The per-partition op of a fused word reduction: a registered
    /// [`WordsPart`] when the text below `words` has a registered form
    /// (`read_text`, a materialized bag of lines), so worker processes run it;
    /// else a closure over the pipeline (lines come owned, words borrowed).
    fn words_part_op(&self, op: &str, ws: &WordsStage, reduction: WordsReduction) -> Arc<dyn Op> {
        let name = self.source().op_name(&format!("{op}-part"));
        if let Some(input) = ws.wire_input() {
            return Arc::new(WordsPart {
                name,
                input,
                reduction,
            });
        }
        let ws = ws.clone();
        match reduction {
            WordsReduction::Frequencies => Arc::new(WordsPartOp {
                name,
                f: move |part, args: &[Value]| ws.count_words(part, args),
                _r: PhantomData,
            }),
            WordsReduction::Count => Arc::new(WordsPartOp {
                name,
                f: move |part, args: &[Value]| ws.num_words(part, args),
                _r: PhantomData,
            }),
        }
    }
}

/// Runs a fused word reduction's per-partition step in-process.
struct WordsPartOp<R, F> {
    name: String,
    f: F,
    _r: PhantomData<fn() -> R>,
}

impl<R, F> Op for WordsPartOp<R, F>
where
    R: Send + Sync + 'static,
    F: Fn(usize, &[Value]) -> Result<R> + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        let (part, args) = split_part(args)?;
        Ok(Value::new((self.f)(part, args)?))
    }
}

fn empty_agg(op: &str) -> Error {
    Error::Core(dask_core::Error::Internal(format!(
        "dask-bag: a `{op}` combine task got no input"
    )))
}

pub(crate) fn merge_counts<T: Hash + Eq + Clone>(rs: &[&HashMap<T, usize>]) -> HashMap<T, usize> {
    let Some(largest) = rs.iter().max_by_key(|r| r.len()) else {
        return HashMap::default();
    };
    let mut out = (*largest).clone();
    for r in rs {
        if std::ptr::eq(*r, *largest) {
            continue;
        }
        for (k, &n) in r.iter() {
            match out.get_mut(k) {
                Some(c) => *c += n,
                None => {
                    out.insert(k.clone(), n);
                }
            }
        }
    }
    out
}

/// An item with its key and position, ordered by key, then earlier position first.
#[derive(Clone)]
struct Ranked<K, T> {
    key: K,
    pos: (usize, usize),
    item: T,
}

impl<K: Ord, T> Ord for Ranked<K, T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key
            .cmp(&other.key)
            .then_with(|| other.pos.cmp(&self.pos))
    }
}

impl<K: Ord, T> PartialOrd for Ranked<K, T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<K: Ord, T> PartialEq for Ranked<K, T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<K: Ord, T> Eq for Ranked<K, T> {}

/// Numbers [`Bag::mean`] can average: converted with `as f64`.
pub trait AsF64 {
    /// The value as an `f64` (possibly rounded).
    fn as_f64(&self) -> f64;
}

macro_rules! as_f64 {
    ($($t:ty),*) => {$(
        impl AsF64 for $t {
            fn as_f64(&self) -> f64 {
                *self as f64
            }
        }
    )*};
}
as_f64!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64);
