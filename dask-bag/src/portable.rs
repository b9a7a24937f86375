//! Bag pipelines on `dask worker` processes.
//!
//! In-process schedulers run any closure. A worker process can only run what
//! it can rebuild from a name, so a bag's `map`, `filter` and `flat_map` steps
//! run there when their functions are registered with [`register_bag_fn!`]
//! (the bag's counterpart of `dask_core::register_op!`):
//!
//! ```
//! fn inc(x: i64) -> i64 { x + 1 }
//! fn is_even(x: &i64) -> bool { x % 2 == 0 }
//! dask_bag::register_bag_fn!(map inc);
//! dask_bag::register_bag_fn!(filter is_even);
//! ```
//!
//! A pipeline is portable when its source is one (a materialized partition,
//! [`range`](crate::Bag::range), [`read_text`](crate::read_text)) and each step
//! is a registered function. Collecting it (`compute`, `persist`, and every
//! step that consumes partitions whole) then uses an op with a wire form, a
//! [`PortablePipeline`]: the worker rebuilds the source, then runs each step
//! on the whole partition (a `Vec` per step, no per-item boxing). In-process
//! the same op runs the fused pipeline as usual. Items cross processes with
//! the codec of their `Vec` (`dask_core::register_codec!`); a missing codec is
//! a clear error. Anything else (a closure, `zip`, `map_partitions`, the
//! reductions other than the built-in word count) is refused for worker
//! processes before anything is sent, with `OpNotRegistered`.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};

use dask_core::{BoxError, Op, Value};
use serde::{Deserialize, Serialize};

use crate::bag::take_vec;
use crate::stage::{internal, split_part, CollectOp, Range, Stage};
use crate::text::ReadText;

/// Where a portable pipeline's items come from (the task's arguments after
/// the partition index).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) enum PortableSource {
    /// A materialized partition: the argument is the `Vec<T>` itself.
    Partition,
    /// [`Bag::range`](crate::Bag::range): the argument is a `(start, end)` pair.
    Range,
    /// [`read_text`](crate::read_text): the argument is a block; its lines.
    ReadText,
}

/// A pipeline a worker process can rebuild: its source and the tags of its
/// registered steps, in order.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Portable {
    pub(crate) source: PortableSource,
    pub(crate) steps: Vec<String>,
}

impl Portable {
    /// A pipeline straight from `source`.
    pub(crate) fn from_source(source: PortableSource) -> Option<Arc<Portable>> {
        Some(Arc::new(Portable {
            source,
            steps: Vec::new(),
        }))
    }

    /// `pipeline` followed by `step`: portable only if both are.
    pub(crate) fn then(
        pipeline: Option<&Arc<Portable>>,
        step: Option<&str>,
    ) -> Option<Arc<Portable>> {
        let (pipeline, step) = (pipeline?, step?);
        let mut next = (**pipeline).clone();
        next.steps.push(step.to_owned());
        Some(Arc::new(next))
    }
}

/// The op a worker process runs for a portable pipeline's partition: the
/// source's items as a `Vec`, then each registered step on the whole `Vec`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct PortablePipeline {
    pub(crate) name: String,
    pub(crate) pipeline: Portable,
}

impl Op for PortablePipeline {
    fn name(&self) -> &str {
        &self.name
    }

    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        let (part, args) = split_part(args)?;
        let mut value = match self.pipeline.source {
            PortableSource::Partition => match args {
                [v] => v.clone(),
                _ => return Err(internal("a materialized partition takes one argument").into()),
            },
            PortableSource::Range => Value::new(
                Range
                    .open(part, args)?
                    .collect::<crate::Result<Vec<u64>>>()?,
            ),
            PortableSource::ReadText => Value::new(
                ReadText
                    .open(part, args)?
                    .collect::<crate::Result<Vec<String>>>()?,
            ),
        };
        for tag in &self.pipeline.steps {
            let step = steps()
                .by_tag
                .get(tag.as_str())
                .ok_or_else(|| -> BoxError {
                    format!(
                        "bag step `{tag}` is not registered in this process: the worker must link \
                     the crate that calls `dask_bag::register_bag_fn!` for it"
                    )
                    .into()
                })?;
            value = (step.build)().run(value)?;
        }
        Ok(value)
    }
}

dask_core::register_op_type!(PortablePipeline);

/// A pipeline's collect op: the fused pipeline in-process, a
/// [`PortablePipeline`] on worker processes (its wire form).
pub(crate) struct PortableCollect<T> {
    pub(crate) local: CollectOp<T>,
    pub(crate) wire: PortablePipeline,
}

impl<T: Send + Sync + 'static> Op for PortableCollect<T> {
    fn name(&self) -> &str {
        self.local.name()
    }

    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        self.local.call(args)
    }

    fn tag(&self) -> Option<&str> {
        dask_core::op::registry().tag_of(TypeId::of::<PortablePipeline>())
    }

    fn params(&self) -> Vec<u8> {
        // Strings and enums: postcard cannot fail on them; an empty result
        // would fail to decode on the worker with a codec error naming the op.
        dask_core::op::postcard_params::<PortablePipeline>(&self.wire as &dyn Any)
            .unwrap_or_default()
    }
}

/// One step of a portable pipeline, run on a whole partition.
pub trait PartitionStep: Send + Sync {
    /// Runs the step on a partition (a `Vec` of the step's input items) and
    /// returns the new partition.
    fn run(&self, partition: Value) -> Result<Value, BoxError>;
}

/// A registered bag function; created by [`register_bag_fn!`], collected at
/// link time.
pub struct StepRegistration {
    /// The step's tag: `map:path::to::function` (or `filter:`, `flat_map:`).
    pub tag: fn() -> &'static str,
    /// The `TypeId` of the step's marker type ([`MapFn`], [`FilterFn`],
    /// [`FlatMapFn`] of the function's type), so a bag finds the tag.
    pub marker: fn() -> TypeId,
    /// Builds the step.
    pub build: fn() -> Box<dyn PartitionStep>,
}

inventory::collect!(StepRegistration);

/// Every registered step, by tag and by marker type (collected once).
struct Steps {
    by_tag: HashMap<&'static str, &'static StepRegistration>,
    tag_by_marker: HashMap<TypeId, &'static str>,
}

fn steps() -> &'static Steps {
    static STEPS: OnceLock<Steps> = OnceLock::new();
    STEPS.get_or_init(|| {
        let mut steps = Steps {
            by_tag: HashMap::new(),
            tag_by_marker: HashMap::new(),
        };
        for r in inventory::iter::<StepRegistration> {
            steps.by_tag.insert((r.tag)(), r);
            steps.tag_by_marker.insert((r.marker)(), (r.tag)());
        }
        steps
    })
}

/// The tag of the step registered for marker type `M`, if any.
pub(crate) fn step_tag<M: 'static>() -> Option<&'static str> {
    steps().tag_by_marker.get(&TypeId::of::<M>()).copied()
}

/// Marker type of a function registered as a `map` step.
pub struct MapFn<F>(PhantomData<F>);
/// Marker type of a function registered as a `filter` step.
pub struct FilterFn<F>(PhantomData<F>);
/// Marker type of a function registered as a `flat_map` step.
pub struct FlatMapFn<F>(PhantomData<F>);

/// The `TypeId` of marker `M` for the function `_f`; used by [`register_bag_fn!`].
pub fn marker_id<M, F>(_f: &F) -> TypeId
where
    M: Marker<F> + 'static,
{
    TypeId::of::<M>()
}

/// Ties a marker type to the function type it marks.
pub trait Marker<F> {}
impl<F> Marker<F> for MapFn<F> {}
impl<F> Marker<F> for FilterFn<F> {}
impl<F> Marker<F> for FlatMapFn<F> {}

struct MapStep<F, A, B>(F, PhantomData<fn(A) -> B>);

impl<F, A, B> PartitionStep for MapStep<F, A, B>
where
    F: Fn(A) -> B + Send + Sync,
    A: Clone + Send + Sync + 'static,
    B: Send + Sync + 'static,
{
    fn run(&self, partition: Value) -> Result<Value, BoxError> {
        let items = take_vec::<A>(partition)?;
        Ok(Value::new(
            items.into_iter().map(&self.0).collect::<Vec<B>>(),
        ))
    }
}

struct FilterStep<F, A>(F, PhantomData<fn(A)>);

impl<F, A> PartitionStep for FilterStep<F, A>
where
    F: Fn(&A) -> bool + Send + Sync,
    A: Clone + Send + Sync + 'static,
{
    fn run(&self, partition: Value) -> Result<Value, BoxError> {
        let mut items = take_vec::<A>(partition)?;
        items.retain(|x| (self.0)(x));
        Ok(Value::new(items))
    }
}

struct FlatMapStep<F, A, I>(F, PhantomData<fn(A) -> I>);

impl<F, A, I> PartitionStep for FlatMapStep<F, A, I>
where
    F: Fn(A) -> I + Send + Sync,
    A: Clone + Send + Sync + 'static,
    I: IntoIterator,
    I::Item: Send + Sync + 'static,
{
    fn run(&self, partition: Value) -> Result<Value, BoxError> {
        let items = take_vec::<A>(partition)?;
        Ok(Value::new(
            items
                .into_iter()
                .flat_map(&self.0)
                .collect::<Vec<I::Item>>(),
        ))
    }
}

/// A `map` step of `f`; used by [`register_bag_fn!`].
pub fn map_step<F, A, B>(f: F) -> Box<dyn PartitionStep>
where
    F: Fn(A) -> B + Send + Sync + 'static,
    A: Clone + Send + Sync + 'static,
    B: Send + Sync + 'static,
{
    Box::new(MapStep(f, PhantomData))
}

/// A `filter` step of `f`; used by [`register_bag_fn!`].
pub fn filter_step<F, A>(f: F) -> Box<dyn PartitionStep>
where
    F: Fn(&A) -> bool + Send + Sync + 'static,
    A: Clone + Send + Sync + 'static,
{
    Box::new(FilterStep(f, PhantomData))
}

/// A `flat_map` step of `f`; used by [`register_bag_fn!`].
pub fn flat_map_step<F, A, I>(f: F) -> Box<dyn PartitionStep>
where
    F: Fn(A) -> I + Send + Sync + 'static,
    A: Clone + Send + Sync + 'static,
    I: IntoIterator + 'static,
    I::Item: Send + Sync + 'static,
{
    Box::new(FlatMapStep(f, PhantomData))
}

/// Registers a function as a bag step a worker process can rebuild, so
/// `bag.map(f)` (`filter`, `flat_map`) runs on `dask worker` processes. The
/// kind comes first: `register_bag_fn!(map inc)`, `register_bag_fn!(filter
/// is_even)`, `register_bag_fn!(flat_map split)`. Register a function once
/// per kind it is used as; the worker binary must link the registering crate.
///
/// ```
/// use dask_bag::Bag;
/// use dask_core::Collection;
/// # use dask_sync_scheduler as _;
/// fn square(x: i64) -> i64 { x * x }
/// fn small(x: &i64) -> bool { *x < 10 }
/// dask_bag::register_bag_fn!(map square);
/// dask_bag::register_bag_fn!(filter small);
///
/// let bag = Bag::from_sequence(0..6i64, 2).unwrap().map(square).filter(small);
/// assert_eq!(bag.compute().unwrap(), [0, 1, 4, 9]);
/// ```
#[macro_export]
macro_rules! register_bag_fn {
    (map $f:path) => {
        $crate::register_bag_fn!(@ "map:", MapFn, map_step, $f);
    };
    (filter $f:path) => {
        $crate::register_bag_fn!(@ "filter:", FilterFn, filter_step, $f);
    };
    (flat_map $f:path) => {
        $crate::register_bag_fn!(@ "flat_map:", FlatMapFn, flat_map_step, $f);
    };
    (@ $kind:literal, $marker:ident, $build:ident, $f:path) => {
        $crate::__private::inventory::submit! {
            $crate::portable::StepRegistration {
                tag: || concat!($kind, module_path!(), "::", stringify!($f)),
                marker: || $crate::portable::marker_id::<$crate::portable::$marker<_>, _>(&$f),
                build: || $crate::portable::$build($f),
            }
        }
    };
}
