//! [`Bag::groupby`]: a hash shuffle.

use rustc_hash::FxHashMap as HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::marker::PhantomData;
use std::sync::Arc;

use dask_core::{Arg, BoxError, Graph, HighLevelGraph, Key, Op, Task, Value};

use crate::bag::{new_name, Bag};
use crate::stage::{split_part, with_items, DynStage};
use crate::{Error, Result};

/// Splits a partition's items into `nout` buckets by the hash of their key.
struct SplitOp<T, K, F> {
    name: String,
    stage: DynStage<T>,
    key: F,
    nout: usize,
    _k: PhantomData<fn() -> K>,
}

fn bucket<K: Hash>(key: &K, nout: usize) -> usize {
    // DefaultHasher::new() has fixed keys: the same key goes to the same bucket
    // in every task and every run.
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    (h.finish() % nout as u64) as usize
}

impl<T, K, F> Op for SplitOp<T, K, F>
where
    T: Send + Sync + 'static,
    K: Hash + Send + Sync + 'static,
    F: Fn(&T) -> K + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        let (part, args) = split_part(args)?;
        let buckets = with_items(&*self.stage, part, args, |items| {
            let mut buckets: Vec<Vec<(K, T)>> = (0..self.nout).map(|_| Vec::new()).collect();
            for x in items {
                let k = (self.key)(&x);
                buckets[bucket(&k, self.nout)].push((k, x));
            }
            buckets
        })?;
        Ok(Value::new(buckets))
    }
}

/// Gathers bucket `j` of every split and groups it by key.
struct GroupOp<T, K> {
    _t: PhantomData<fn() -> (K, T)>,
}

impl<T, K> Op for GroupOp<T, K>
where
    T: Clone + Send + Sync + 'static,
    K: Hash + Eq + Clone + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        "groupby-collect"
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        let (j, splits) = split_part(args)?;
        let mut index: HashMap<K, usize> = HashMap::default();
        let mut groups: Vec<(K, Vec<T>)> = Vec::new();
        for s in splits {
            let buckets = s.downcast_ref::<Vec<Vec<(K, T)>>>()?;
            let bucket = buckets
                .get(j)
                .ok_or_else(|| crate::stage::internal("groupby: a split has too few buckets"))?;
            for (k, x) in bucket {
                match index.get(k) {
                    Some(&g) => groups[g].1.push(x.clone()),
                    None => {
                        index.insert(k.clone(), groups.len());
                        groups.push((k.clone(), vec![x.clone()]));
                    }
                }
            }
        }
        Ok(Value::new(groups))
    }
}

impl<T: Clone + Send + Sync + 'static> Bag<T> {
    /// Groups the items by `key`: a bag of `(key, items)` pairs with as many
    /// partitions as this one. See [`Bag::groupby_into`].
    pub fn groupby<K, F>(&self, key: F) -> Bag<(K, Vec<T>)>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        F: Fn(&T) -> K + Send + Sync + 'static,
    {
        self.shuffle(key, self.npartitions)
    }

    /// Groups the items by `key` into `npartitions` partitions, by a hash
    /// shuffle: each input partition's task splits its items into
    /// `npartitions` buckets by the hash of their key, then output partition
    /// `j`'s task gathers bucket `j` of every split and groups it. All the
    /// items of a key land in one output partition, in bag order; groups
    /// appear in order of first occurrence within their partition.
    ///
    /// The shuffle is all-to-all (`n × npartitions` dependencies) and moves
    /// every item: prefer [`Bag::foldby`] when a reduction per key is all you
    /// need.
    ///
    /// Errors: [`Error::InvalidArgument`] if `npartitions` is 0.
    pub fn groupby_into<K, F>(&self, key: F, npartitions: usize) -> Result<Bag<(K, Vec<T>)>>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        F: Fn(&T) -> K + Send + Sync + 'static,
    {
        if npartitions == 0 {
            return Err(Error::invalid(
                "npartitions",
                "groupby needs at least one output partition, got 0: pass 1 or more",
            ));
        }
        Ok(self.shuffle(key, npartitions))
    }

    fn shuffle<K, F>(&self, key: F, nout: usize) -> Bag<(K, Vec<T>)>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        F: Fn(&T) -> K + Send + Sync + 'static,
    {
        let src = self.source();
        let name = new_name("groupby");
        let split_name: Arc<str> = format!("{name}-split").into();
        let split: Arc<dyn Op> = Arc::new(SplitOp {
            name: src.op_name("groupby-split"),
            stage: src.stage.clone(),
            key,
            nout,
            _k: PhantomData,
        });
        let mut graph = Graph::with_capacity(self.npartitions + nout);
        let splits: Vec<Arg> = (0..self.npartitions)
            .map(|i| {
                let k = Key::new(split_name.clone(), [i as u64]);
                graph.insert(k.clone(), src.task(split.clone(), i));
                Arg::Key(k)
            })
            .collect();
        let group: Arc<dyn Op> = Arc::new(GroupOp::<T, K> { _t: PhantomData });
        for j in 0..nout {
            let mut args = Vec::with_capacity(splits.len() + 1);
            args.push(Arg::value(j));
            args.extend(splits.iter().cloned());
            graph.insert(
                Key::new(name.clone(), [j as u64]),
                Task::new(group.clone(), args),
            );
        }
        let hlg = HighLevelGraph::from_layer(name.clone(), graph, &[&src.graph]);
        let mut out = Bag::materialized(hlg, name, nout);
        out.split_every = self.split_every;
        out
    }
}
