//! Stages: the per-partition iterator pipeline a bag keeps pending until an
//! operation needs its partitions.
//!
//! A stage turns a partition task's arguments into a stream of items. `map`,
//! `filter`, `flat_map`, ... wrap the stage below them, so a chain of them (and
//! the reduction or write that consumes it) runs as one task per partition,
//! with no intermediate `Vec` between steps.

use std::marker::PhantomData;
use std::sync::Arc;

use dask_core::{BoxError, Op, Value};

use crate::words::{TextSource, WordsStage};
use crate::{Error, Result};

/// A stream of items of one partition, stopping at the first error.
pub(crate) type Stream<'a, T> = Box<dyn Iterator<Item = Result<T>> + 'a>;

/// One step of a partition pipeline.
pub(crate) trait Stage<T>: Send + Sync + 'static {
    /// Opens the stream of partition `part` from its task's arguments.
    fn open<'a>(&'a self, part: usize, args: &'a [Value]) -> Result<Stream<'a, T>>;

    /// This stage as `flat_map(words)`, for the fused word reductions.
    fn as_words(&self) -> Option<&WordsStage> {
        None
    }

    /// This stage's partitions as borrowed text (lines of `String`s only).
    fn as_text(&self) -> Option<&dyn TextSource> {
        None
    }
}

pub(crate) type DynStage<T> = Arc<dyn Stage<T>>;

/// The items of one partition, as a reduction's per-partition function sees them.
///
/// An error while producing the items (an unreadable line, a missing JSON
/// field) ends the iteration early; the task then fails with that error, so a
/// per-partition result built from a truncated stream is never used.
pub struct Items<'a, T> {
    stream: Stream<'a, T>,
    error: &'a mut Option<Error>,
}

impl<T> Iterator for Items<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        if self.error.is_some() {
            return None;
        }
        match self.stream.next()? {
            Ok(item) => Some(item),
            Err(e) => {
                *self.error = Some(e);
                None
            }
        }
    }
}

/// Runs `f` over the items of partition `part`; an error in the stream wins.
pub(crate) fn with_items<T: 'static, R>(
    stage: &dyn Stage<T>,
    part: usize,
    args: &[Value],
    f: impl FnOnce(Items<'_, T>) -> R,
) -> Result<R> {
    let stream = stage.open(part, args)?;
    let mut error = None;
    let out = f(Items {
        stream,
        error: &mut error,
    });
    match error {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// The partition index a pipeline task gets as its first argument.
pub(crate) fn split_part(args: &[Value]) -> Result<(usize, &[Value]), BoxError> {
    match args.split_first() {
        Some((p, rest)) => Ok((*p.downcast_ref::<usize>()?, rest)),
        None => Err(internal("a partition task got no arguments").into()),
    }
}

pub(crate) fn internal(msg: &str) -> dask_core::Error {
    dask_core::Error::Internal(format!("dask-bag: {msg}"))
}

/// An op running a pipeline and collecting the partition into a `Vec<T>`.
pub(crate) struct CollectOp<T> {
    pub(crate) name: String,
    pub(crate) stage: DynStage<T>,
}

impl<T: Send + Sync + 'static> Op for CollectOp<T> {
    fn name(&self) -> &str {
        &self.name
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        let (part, args) = split_part(args)?;
        let items = self.stage.open(part, args)?.collect::<Result<Vec<T>>>()?;
        Ok(Value::new(items))
    }
}

/// An op collecting at most `n` items of a partition (for `take`).
pub(crate) struct HeadOp<T> {
    pub(crate) name: String,
    pub(crate) stage: DynStage<T>,
    pub(crate) n: usize,
}

impl<T: Send + Sync + 'static> Op for HeadOp<T> {
    fn name(&self) -> &str {
        &self.name
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        let (part, args) = split_part(args)?;
        let items = self
            .stage
            .open(part, args)?
            .take(self.n)
            .collect::<Result<Vec<T>>>()?;
        Ok(Value::new(items))
    }
}

/// A materialized partition: the task's one argument is a `Vec<T>`, cloned item by item.
pub(crate) struct FromVec<T>(pub(crate) PhantomData<fn() -> T>);

impl<T: Clone + Send + Sync + 'static> Stage<T> for FromVec<T> {
    fn open<'a>(&'a self, _part: usize, args: &'a [Value]) -> Result<Stream<'a, T>> {
        let [v] = args else {
            return Err(internal("a materialized partition takes one argument").into());
        };
        let items = v.downcast_ref::<Vec<T>>()?;
        Ok(Box::new(items.iter().cloned().map(Ok)))
    }

    fn as_text(&self) -> Option<&dyn TextSource> {
        (std::any::TypeId::of::<T>() == std::any::TypeId::of::<String>()).then_some(self)
    }
}

/// A materialized partition of lines, borrowed line by line.
impl<T: Send + Sync + 'static> TextSource for FromVec<T> {
    fn for_each_text(&self, _part: usize, args: &[Value], f: &mut dyn FnMut(&str)) -> Result<()> {
        let [v] = args else {
            return Err(internal("a materialized partition takes one argument").into());
        };
        for line in v.downcast_ref::<Vec<String>>()? {
            f(line);
        }
        Ok(())
    }

    fn wire(&self) -> Option<crate::wire::TextInput> {
        Some(crate::wire::TextInput::Lines)
    }
}

/// `range`: the argument is a `(start, end)` pair.
pub(crate) struct Range;

impl Stage<u64> for Range {
    fn open<'a>(&'a self, _part: usize, args: &'a [Value]) -> Result<Stream<'a, u64>> {
        let [v] = args else {
            return Err(internal("a range partition takes one argument").into());
        };
        let &(start, end) = v.downcast_ref::<(u64, u64)>()?;
        Ok(Box::new((start..end).map(Ok)))
    }
}

pub(crate) struct Map<A, F> {
    pub(crate) inner: DynStage<A>,
    pub(crate) f: F,
}

impl<A: 'static, B, F> Stage<B> for Map<A, F>
where
    F: Fn(A) -> B + Send + Sync + 'static,
{
    fn open<'a>(&'a self, part: usize, args: &'a [Value]) -> Result<Stream<'a, B>> {
        let inner = self.inner.open(part, args)?;
        Ok(Box::new(inner.map(move |r| r.map(&self.f))))
    }
}

/// A fallible map that knows each item's partition and position (pluck, JSON).
pub(crate) struct TryMap<A, F> {
    pub(crate) inner: DynStage<A>,
    pub(crate) f: F,
}

impl<A: 'static, B, F> Stage<B> for TryMap<A, F>
where
    F: Fn(usize, usize, A) -> Result<B> + Send + Sync + 'static,
{
    fn open<'a>(&'a self, part: usize, args: &'a [Value]) -> Result<Stream<'a, B>> {
        let inner = self.inner.open(part, args)?;
        Ok(Box::new(
            inner
                .enumerate()
                .map(move |(i, r)| r.and_then(|x| (self.f)(part, i, x))),
        ))
    }
}

pub(crate) struct Filter<A, F> {
    pub(crate) inner: DynStage<A>,
    pub(crate) f: F,
}

impl<A: 'static, F> Stage<A> for Filter<A, F>
where
    F: Fn(&A) -> bool + Send + Sync + 'static,
{
    fn open<'a>(&'a self, part: usize, args: &'a [Value]) -> Result<Stream<'a, A>> {
        let inner = self.inner.open(part, args)?;
        Ok(Box::new(inner.filter(move |r| match r {
            Ok(x) => (self.f)(x),
            Err(_) => true,
        })))
    }
}

#[derive(Clone)]
pub(crate) struct FlatMap<A, F> {
    pub(crate) inner: DynStage<A>,
    pub(crate) f: F,
}

impl<A: 'static, I, F> Stage<I::Item> for FlatMap<A, F>
where
    I: IntoIterator + 'static,
    I::IntoIter: 'static,
    I::Item: 'static,
    F: Fn(A) -> I + Send + Sync + 'static,
{
    fn open<'a>(&'a self, part: usize, args: &'a [Value]) -> Result<Stream<'a, I::Item>> {
        Ok(Box::new(FlatMapIter {
            inner: self.inner.open(part, args)?,
            current: None,
            f: &self.f,
        }))
    }
}

/// `flat_map`'s iterator: the current item's iterator is kept unboxed.
struct FlatMapIter<'a, A, I: IntoIterator, F> {
    inner: Stream<'a, A>,
    current: Option<I::IntoIter>,
    f: &'a F,
}

impl<A, I: IntoIterator, F: Fn(A) -> I> Iterator for FlatMapIter<'_, A, I, F> {
    type Item = Result<I::Item>;
    fn next(&mut self) -> Option<Result<I::Item>> {
        loop {
            if let Some(item) = self.current.as_mut().and_then(Iterator::next) {
                return Some(Ok(item));
            }
            match self.inner.next()? {
                Ok(x) => self.current = Some((self.f)(x).into_iter()),
                Err(e) => {
                    self.current = None;
                    return Some(Err(e));
                }
            }
        }
    }
}

pub(crate) struct MapPartitions<A, F> {
    pub(crate) inner: DynStage<A>,
    pub(crate) f: F,
}

impl<A: 'static, I, F> Stage<I::Item> for MapPartitions<A, F>
where
    I: IntoIterator,
    I::IntoIter: 'static,
    I::Item: 'static,
    F: Fn(Vec<A>) -> I + Send + Sync + 'static,
{
    fn open<'a>(&'a self, part: usize, args: &'a [Value]) -> Result<Stream<'a, I::Item>> {
        let items = self.inner.open(part, args)?.collect::<Result<Vec<A>>>()?;
        Ok(Box::new((self.f)(items).into_iter().map(Ok)))
    }
}

/// `zip`: the arguments are two lists, the left and the right pipeline's.
pub(crate) struct Zip<A, B> {
    pub(crate) left: DynStage<A>,
    pub(crate) right: DynStage<B>,
}

impl<A: 'static, B: 'static> Stage<(A, B)> for Zip<A, B> {
    fn open<'a>(&'a self, part: usize, args: &'a [Value]) -> Result<Stream<'a, (A, B)>> {
        let [l, r] = args else {
            return Err(internal("a zip partition takes two argument lists").into());
        };
        let mut left = self.left.open(part, l.downcast_ref::<Vec<Value>>()?)?;
        let mut right = self.right.open(part, r.downcast_ref::<Vec<Value>>()?)?;
        let mut len = 0usize;
        let mut done = false;
        Ok(Box::new(std::iter::from_fn(move || {
            if done {
                return None;
            }
            let out = match (left.next(), right.next()) {
                (None, None) => None,
                (Some(Ok(a)), Some(Ok(b))) => Some(Ok((a, b))),
                (Some(Err(e)), _) | (_, Some(Err(e))) => Some(Err(e)),
                (None, Some(_)) => Some(Err(Error::ZipLengthMismatch {
                    partition: part,
                    shorter: "left",
                    len,
                })),
                (Some(_), None) => Some(Err(Error::ZipLengthMismatch {
                    partition: part,
                    shorter: "right",
                    len,
                })),
            };
            len += 1;
            done = !matches!(out, Some(Ok(_)));
            out
        })))
    }
}
