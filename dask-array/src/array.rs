//! [`Array<T>`]: a lazy n-dimensional array, a grid of ndarray blocks.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use dask_core::{Arg, BoxError, Collection, Graph, HighLevelGraph, Key, Op, Task, Value};
use ndarray::{ArrayD, IxDyn, Slice};

use crate::chunks::Chunks;
use crate::element::Element;
use crate::error::{fmt_shape, Error, Result};

/// Nested tasks deeper than this are referenced by key instead of inlined, to
/// bound the stack a fused task needs.
const MAX_INLINE_DEPTH: usize = 24;

/// The untyped part of an array: its layer name, chunks and graph.
#[derive(Clone)]
pub(crate) struct Meta {
    /// The name of the array's layer: every block key is `(name, i, j, ..)`.
    pub name: Arc<str>,
    pub chunks: Chunks,
    pub graph: HighLevelGraph,
    /// For elementwise-like layers (one cheap task per block, reading each input
    /// block once): the graph without this layer, so the next elementwise
    /// operation can inline this layer's tasks instead of referencing them.
    pub base: Option<HighLevelGraph>,
    /// `max_uses` of [`crate::optimize::inline_creation`] when this array is
    /// computed (set by [`Array::inline_creation`]).
    pub inline_uses: usize,
}

impl Meta {
    pub fn key(&self, index: &[usize]) -> Key {
        block_key(self.name.clone(), index)
    }

    pub fn shape(&self) -> Vec<usize> {
        self.chunks.shape()
    }

    pub fn ndim(&self) -> usize {
        self.chunks.ndim()
    }

    /// The deepest task of this array's own layer.
    fn layer_depth(&self) -> usize {
        self.graph
            .layer(&self.name)
            .map(|l| l.graph.iter().map(|(_, t)| t.depth()).max().unwrap_or(0))
            .unwrap_or(usize::MAX)
    }
}

pub(crate) fn block_key(name: Arc<str>, index: &[usize]) -> Key {
    let idx: Vec<u64> = index.iter().map(|&i| i as u64).collect();
    Key::new(name, idx)
}

/// One input of a new layer: referenced by key, or with its tasks inlined.
pub(crate) struct Source<'a> {
    meta: &'a Meta,
    inline: bool,
}

impl<'a> Source<'a> {
    /// `may_inline`: the caller reads every block of `meta` exactly once.
    pub fn new(meta: &'a Meta, may_inline: bool) -> Source<'a> {
        let inline = may_inline && meta.base.is_some() && meta.layer_depth() < MAX_INLINE_DEPTH;
        Source { meta, inline }
    }

    /// The argument standing for block `index`.
    pub fn arg(&self, index: &[usize]) -> Arg {
        let key = self.meta.key(index);
        if self.inline {
            if let Some(task) = self
                .meta
                .graph
                .layer(&self.meta.name)
                .and_then(|l| l.graph.get(&key))
            {
                return Arg::Task(Box::new(task.clone()));
            }
        }
        Arg::Key(key)
    }

    /// The graph the new layer depends on.
    pub fn graph(&self) -> HighLevelGraph {
        match (&self.meta.base, self.inline) {
            (Some(base), true) => base.clone(),
            _ => self.meta.graph.clone(),
        }
    }
}

/// A registered op struct as a task's op.
pub(crate) fn op(o: impl Op) -> Arc<dyn Op> {
    Arc::new(o)
}

/// The function type behind [`BlockOp`].
pub(crate) type BlockFn = dyn Fn(&[Value]) -> Result<Value, BoxError> + Send + Sync;

/// The op of tasks built from user closures ([`Array::map`],
/// [`Array::map_blocks`], [`blockwise`](crate::blockwise), ...): a stable name
/// and a function of the task's values. Closures cannot be rebuilt in another
/// process, so such tasks run on in-process schedulers and workers only; every
/// other dask-array task uses a registered op struct that worker processes
/// rebuild.
pub struct BlockOp {
    name: Arc<str>,
    f: Arc<BlockFn>,
}

impl Op for BlockOp {
    fn name(&self) -> &str {
        &self.name
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        (self.f)(args)
    }
}

/// A [`BlockOp`] named `dask_array::<name>`.
pub(crate) fn block_op(
    name: &str,
    f: impl Fn(&[Value]) -> Result<Value, BoxError> + Send + Sync + 'static,
) -> Arc<dyn Op> {
    Arc::new(BlockOp {
        name: format!("dask_array::{name}").into(),
        f: Arc::new(f),
    })
}

/// Argument `i` of a task as a chunk of `T`.
pub(crate) fn chunk_arg<T: Element>(args: &[Value], i: usize) -> Result<&ArrayD<T>, BoxError> {
    let v = args
        .get(i)
        .ok_or_else(|| -> BoxError { format!("missing argument {i}").into() })?;
    Ok(v.downcast_ref::<ArrayD<T>>()?)
}

/// Argument `i` of a task as a `U`.
pub(crate) fn value_arg<U: 'static>(args: &[Value], i: usize) -> Result<&U, BoxError> {
    let v = args
        .get(i)
        .ok_or_else(|| -> BoxError { format!("missing argument {i}").into() })?;
    Ok(v.downcast_ref::<U>()?)
}

/// Builds a new layer: one task per block of `chunks`.
pub(crate) fn new_layer<T: Element>(
    name: String,
    chunks: Chunks,
    deps: &[HighLevelGraph],
    fusable: bool,
    mut task: impl FnMut(&[usize]) -> Task,
) -> Array<T> {
    let name: Arc<str> = name.into();
    let mut graph = Graph::with_capacity(chunks.npartitions());
    for idx in chunks.block_indices() {
        graph.insert(block_key(name.clone(), &idx), task(&idx));
    }
    layer_from_graph(name, chunks, graph, deps, fusable)
}

/// [`new_layer`] with the layer's graph already built (keys `(name, index)`).
pub(crate) fn layer_from_graph<T: Element>(
    name: Arc<str>,
    chunks: Chunks,
    graph: Graph,
    deps: &[HighLevelGraph],
    fusable: bool,
) -> Array<T> {
    let refs: Vec<&HighLevelGraph> = deps.iter().collect();
    let hlg = HighLevelGraph::from_layer(name.clone(), graph, &refs);
    let base = fusable.then(|| HighLevelGraph::merge(refs.iter().copied()));
    Array::from_meta(Meta {
        name,
        chunks,
        graph: hlg,
        base,
        inline_uses: crate::optimize::DEFAULT_MAX_USES,
    })
}

/// A lazy n-dimensional array of `T`, cut into ndarray blocks.
///
/// Every operation adds one layer to the array's [`HighLevelGraph`] and returns
/// a new array; nothing runs until [`Collection::compute`] (or
/// `compute_with`), which gives an [`ndarray::ArrayD<T>`] assembled from the
/// blocks. Block `(i, j, ..)` is the task `Key::new(name, [i, j, ..])`; the name
/// is `<op>-<token of the inputs>`, so equal work gets equal keys.
///
/// ```
/// use dask_array::{from_array, Collection};
/// use dask_sync_scheduler::SyncScheduler;
/// let a = ndarray::Array::from_shape_vec((2, 3), (0..6).map(f64::from).collect()).unwrap();
/// let x = from_array(a.clone(), 2).unwrap();
/// assert_eq!(x.shape(), &[2, 3]);
/// assert_eq!(x.chunks().axes(), &[vec![2], vec![2, 1]]);
/// assert_eq!(x.compute_with(&SyncScheduler::new()).unwrap(), a.into_dyn());
/// ```
pub struct Array<T: Element> {
    meta: Meta,
    shape: Vec<usize>,
    _type: PhantomData<fn() -> T>,
}

impl<T: Element> Clone for Array<T> {
    fn clone(&self) -> Self {
        Array::from_meta(self.meta.clone())
    }
}

impl<T: Element> Array<T> {
    pub(crate) fn from_meta(meta: Meta) -> Array<T> {
        let shape = meta.chunks.shape();
        Array {
            meta,
            shape,
            _type: PhantomData,
        }
    }

    pub(crate) fn meta(&self) -> &Meta {
        &self.meta
    }

    /// The length of each axis.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of axes.
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// The number of elements.
    pub fn size(&self) -> usize {
        self.shape.iter().product()
    }

    /// The block lengths along every axis.
    pub fn chunks(&self) -> &Chunks {
        &self.meta.chunks
    }

    /// The number of blocks (and of output tasks).
    pub fn npartitions(&self) -> usize {
        self.meta.chunks.npartitions()
    }

    /// The number of blocks along each axis.
    pub fn numblocks(&self) -> Vec<usize> {
        self.meta.chunks.numblocks()
    }

    /// The NumPy name of the element type (`"float64"`, `"bool"`, ...).
    pub fn dtype(&self) -> &'static str {
        T::DTYPE
    }

    /// The size of one element in bytes.
    pub fn itemsize(&self) -> usize {
        std::mem::size_of::<T>()
    }

    /// The bytes the computed array takes.
    pub fn nbytes(&self) -> usize {
        self.size() * self.itemsize()
    }

    /// The name of the array's layer (the name of every block key).
    pub fn name(&self) -> &str {
        &self.meta.name
    }

    /// The key of the block at `index`.
    pub fn block_key(&self, index: &[usize]) -> Key {
        self.meta.key(index)
    }

    /// The number of tasks in the array's graph.
    pub fn num_tasks(&self) -> usize {
        self.meta.graph.len()
    }

    /// Computes a 0-dimensional array (a full reduction) on the default
    /// scheduler and returns its one element.
    pub fn compute_scalar(&self) -> Result<T> {
        let s = dask_core::scheduler::default_scheduler()?;
        self.compute_scalar_with(&*s)
    }

    /// [`Array::compute_scalar`] on the given scheduler. Errors with
    /// [`Error::NotScalar`] (before computing) unless the array is 0-dimensional.
    pub fn compute_scalar_with(&self, scheduler: &dyn dask_core::Scheduler) -> Result<T> {
        if self.ndim() != 0 {
            return Err(Error::NotScalar {
                shape: self.shape.clone(),
            });
        }
        let a = self.compute_with(scheduler)?;
        a.iter().next().copied().ok_or_else(|| {
            dask_core::Error::Internal("a 0-d array computed to no element".into()).into()
        })
    }

    pub(crate) fn check_axis(&self, axis: usize) -> Result<()> {
        check_axis(&self.shape, axis)
    }
}

pub(crate) fn check_axis(shape: &[usize], axis: usize) -> Result<()> {
    if axis < shape.len() {
        Ok(())
    } else {
        Err(Error::AxisOutOfRange {
            axis,
            ndim: shape.len(),
            shape: shape.to_vec(),
        })
    }
}

/// Assembles blocks (in C order of `chunks`) into one array.
pub(crate) fn assemble<T: Element>(chunks: &Chunks, values: Vec<Value>) -> Result<ArrayD<T>> {
    let shape = chunks.shape();
    let indices = chunks.block_indices();
    if values.len() != indices.len() {
        return Err(dask_core::Error::WrongNumberOfValues {
            expected: indices.len(),
            found: values.len(),
        }
        .into());
    }
    let check = |b: &ArrayD<T>, idx: &[usize]| -> Result<()> {
        let expected = chunks.block_shape(idx);
        if b.shape() == expected.as_slice() {
            Ok(())
        } else {
            Err(dask_core::Error::Internal(format!(
                "block {idx:?} has shape {}, expected {}",
                fmt_shape(b.shape()),
                fmt_shape(&expected)
            ))
            .into())
        }
    };
    if values.len() == 1 {
        let value = values.into_iter().next().expect("one value");
        let block: ArrayD<T> = value.take()?;
        check(&block, &indices[0])?;
        return Ok(block);
    }
    let offsets: Vec<Vec<usize>> = (0..chunks.ndim()).map(|a| chunks.offsets(a)).collect();
    let mut out = ArrayD::<T>::default(IxDyn(&shape));
    for (idx, value) in indices.iter().zip(values) {
        let block = value.downcast_ref::<ArrayD<T>>().map_err(Error::Core)?;
        check(block, idx)?;
        out.slice_each_axis_mut(|ax| {
            let a = ax.axis.index();
            Slice::from(offsets[a][idx[a]]..offsets[a][idx[a] + 1])
        })
        .assign(block);
    }
    Ok(out)
}

impl<T: Element> Collection for Array<T> {
    type Output = ArrayD<T>;

    fn graph(&self) -> HighLevelGraph {
        self.meta.graph.clone()
    }

    fn keys(&self) -> Vec<Key> {
        self.meta
            .chunks
            .block_indices()
            .iter()
            .map(|i| self.meta.key(i))
            .collect()
    }

    fn finalize(&self, values: Vec<Value>) -> dask_core::Result<ArrayD<T>> {
        assemble(&self.meta.chunks, values).map_err(|e| match e {
            Error::Core(c) => c,
            other => dask_core::Error::Internal(other.to_string()),
        })
    }

    fn rebuild(&self, graph: HighLevelGraph) -> Self {
        Array::from_meta(Meta {
            name: self.meta.name.clone(),
            chunks: self.meta.chunks.clone(),
            graph,
            base: None,
            inline_uses: self.meta.inline_uses,
        })
    }

    /// The graph a scheduler gets: culled to the keys, cheap creation blocks
    /// inlined into their readers ([`crate::optimize`]), linear chains fused.
    fn optimized_graph(&self) -> dask_core::Result<Graph> {
        let keys = self.keys();
        let graph = self.meta.graph.cull_layers(&keys).to_graph();
        crate::optimize::optimize(&graph, &keys, self.meta.inline_uses)
    }
}

fn fmt_bytes(n: usize) -> String {
    const UNITS: [&str; 5] = ["B", "kiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", UNITS[unit])
    }
}

/// Chunks as dask prints them, with long axes shortened:
/// `((1000, 1000, 1000, ..., 1000) x10, (4,))`.
fn compact_chunks(chunks: &Chunks) -> String {
    const MAX: usize = 8;
    let axes: Vec<String> = chunks
        .axes()
        .iter()
        .map(|a| {
            if a.len() <= MAX {
                fmt_shape(a)
            } else {
                let head: Vec<String> = a[..3].iter().map(|n| n.to_string()).collect();
                format!(
                    "({}, ..., {}) x{}",
                    head.join(", "),
                    a[a.len() - 1],
                    a.len()
                )
            }
        })
        .collect();
    match axes.len() {
        0 => "()".to_owned(),
        1 => format!("({},)", axes[0]),
        _ => format!("({})", axes.join(", ")),
    }
}

impl<T: Element> fmt::Display for Array<T> {
    /// Like dask.array's repr:
    /// `dask.array<add, shape=(4, 4), dtype=float64, chunksize=(2, 2), chunks=((2, 2), (2, 2)), tasks=8, nbytes=128 B>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = self
            .meta
            .name
            .rsplit_once('-')
            .map_or(&*self.meta.name, |(op, _)| op);
        write!(
            f,
            "dask.array<{op}, shape={}, dtype={}, chunksize={}, chunks={}, tasks={}, nbytes={}>",
            fmt_shape(&self.shape),
            T::DTYPE,
            fmt_shape(&self.meta.chunks.chunksize()),
            compact_chunks(&self.meta.chunks),
            self.num_tasks(),
            fmt_bytes(self.nbytes())
        )
    }
}

impl<T: Element> fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
