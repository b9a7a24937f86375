//! [`Array::rechunk`]: regroup an array into other blocks.

use std::marker::PhantomData;
use std::sync::Arc;

use dask_core::{tokenize, Arg, BoxError, Graph, HighLevelGraph, Key, Op, Task, Value};
use ndarray::{ArrayD, IxDyn, Slice};
use serde::{Deserialize, Serialize};

use crate::array::{block_key, chunk_arg, layer_from_graph, op, value_arg, Array, Meta};
use crate::chunks::{grid_indices, offsets, ChunkSpec, Chunks};
use crate::element::Element;
use crate::error::Result;

/// How the pieces of one output block are placed: the grid of pieces and,
/// per axis, each piece's length.
#[derive(Serialize, Deserialize)]
struct Placement {
    shape: Vec<usize>,
    grid: Vec<usize>,
    lengths: Vec<Vec<usize>>,
}

dask_core::register_codec!(Placement);

/// The split op of a rechunk: the local `(start, end)` range of every axis.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
struct Split<T>(#[serde(skip)] PhantomData<T>);

impl<T: Element> Op for Split<T> {
    fn name(&self) -> &str {
        "dask_array::rechunk-split"
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        let block = chunk_arg::<T>(args, 0)?;
        let ranges = value_arg::<Vec<(usize, usize)>>(args, 1)?;
        if ranges.len() != block.ndim() {
            return Err("rechunk-split: ranges and block disagree (bug in dask-array)".into());
        }
        let view = block.slice_each_axis(|ax| {
            let (s, e) = ranges[ax.axis.index()];
            Slice::from(s..e)
        });
        Ok(Value::new(view.to_owned()))
    }
}

/// The merge op of a rechunk: assembles a block from its pieces.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
struct Merge<T>(#[serde(skip)] PhantomData<T>);

impl<T: Element> Op for Merge<T> {
    fn name(&self) -> &str {
        "dask_array::rechunk-merge"
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        let parts = value_arg::<Vec<Value>>(args, 0)?;
        let p = value_arg::<Placement>(args, 1)?;
        let mut out = ArrayD::<T>::default(IxDyn(&p.shape));
        for (k, idx) in grid_indices(&p.grid).iter().enumerate() {
            let piece = chunk_arg::<T>(parts, k)?;
            out.slice_each_axis_mut(|ax| {
                let a = ax.axis.index();
                let d: usize = p.lengths[a][..idx[a]].iter().sum();
                Slice::from(d..d + p.lengths[a][idx[a]])
            })
            .assign(piece);
        }
        Ok(Value::new(out))
    }
}

register_each!(Split: f64, f32, i64, i32, bool);
register_each!(Merge: f64, f32, i64, i32, bool);

impl<T: Element> Array<T> {
    /// The same array cut into other blocks (`chunks` as for
    /// [`from_array`](crate::from_array)).
    ///
    /// The plan bounds memory per task: where an old block overlaps a new block
    /// only partly, a *split* task cuts out just the overlap (holding one old
    /// block), and a *merge* task assembles each new block from its pieces
    /// (holding one new block). Old blocks that fall wholly inside a new block
    /// are read directly, and a new block equal to an old one is an alias.
    ///
    /// ```
    /// use dask_array::{arange, Collection};
    /// let x = arange(0i64, 10, 1, 3).unwrap();
    /// let y = x.rechunk(vec![vec![5, 5]]).unwrap();
    /// assert_eq!(y.chunks().axes(), &[vec![5, 5]]);
    /// # use dask_sync_scheduler::SyncScheduler;
    /// assert_eq!(y.compute_with(&SyncScheduler::new()).unwrap(), x.compute_with(&SyncScheduler::new()).unwrap());
    /// ```
    pub fn rechunk(&self, chunks: impl Into<ChunkSpec>) -> Result<Array<T>> {
        let chunks = Chunks::new(self.shape(), chunks)?;
        Ok(Array::from_meta(rechunk_meta::<T>(self.meta(), &chunks)))
    }
}

/// `meta` regrouped into `target` (same shape); `meta` itself when equal.
pub(crate) fn rechunk_meta<T: Element>(meta: &Meta, target: &Chunks) -> Meta {
    if &meta.chunks == target {
        return meta.clone();
    }
    let ndim = target.ndim();
    // For every axis and output block: the overlapping input pieces.
    let per_axis: Vec<Vec<Vec<(usize, usize, usize)>>> = (0..ndim)
        .map(|a| axis_pieces(meta.chunks.axis(a), target.axis(a)))
        .collect();
    let token = tokenize(&(&*meta.name, target));
    let split_op = op(Split::<T>(PhantomData));
    let merge_op = op(Merge::<T>(PhantomData));
    // Split tasks, numbered in a deterministic order.
    let split_name: Arc<str> = format!("rechunk-split-{token}").into();
    let mut splits = Graph::new();
    let merge_name: Arc<str> = format!("rechunk-merge-{token}").into();
    let mut merges = Graph::with_capacity(target.npartitions());
    for idx in target.block_indices() {
        let ranges: Vec<&Vec<(usize, usize, usize)>> =
            (0..ndim).map(|a| &per_axis[a][idx[a]]).collect();
        let grid: Vec<usize> = ranges.iter().map(|r| r.len()).collect();
        let mut args = Vec::new();
        let mut whole_blocks = Vec::new();
        for g in grid_indices(&grid) {
            let src: Vec<usize> = (0..ndim).map(|a| ranges[a][g[a]].0).collect();
            let local: Vec<(usize, usize)> = (0..ndim)
                .map(|a| (ranges[a][g[a]].1, ranges[a][g[a]].2))
                .collect();
            let src_shape = meta.chunks.block_shape(&src);
            let whole = local
                .iter()
                .zip(&src_shape)
                .all(|(&(s, e), &n)| s == 0 && e == n);
            whole_blocks.push(whole);
            if whole {
                args.push(Arg::Key(meta.key(&src)));
            } else {
                let key = Key::new(split_name.clone(), [splits.len() as u64]);
                splits.insert(
                    key.clone(),
                    Task::new(
                        split_op.clone(),
                        vec![Arg::Key(meta.key(&src)), Arg::value(local)],
                    ),
                );
                args.push(Arg::Key(key));
            }
        }
        let task = match (&args[..], &whole_blocks[..]) {
            ([Arg::Key(k)], [true]) => Task::alias(k.clone()),
            _ => {
                let lengths = ranges
                    .iter()
                    .map(|r| r.iter().map(|(_, s, e)| e - s).collect())
                    .collect();
                let placement = Placement {
                    shape: target.block_shape(&idx),
                    grid,
                    lengths,
                };
                Task::new(
                    merge_op.clone(),
                    vec![Arg::List(args), Arg::value(placement)],
                )
            }
        };
        merges.insert(block_key(merge_name.clone(), &idx), task);
    }
    let deps = if splits.is_empty() {
        meta.graph.clone()
    } else {
        HighLevelGraph::from_layer(split_name, splits, &[&meta.graph])
    };
    let array = layer_from_graph::<T>(merge_name, target.clone(), merges, &[deps], false);
    array.meta().clone()
}

/// For each block of `to`, the pieces `(from block, local start, local end)`.
fn axis_pieces(from: &[usize], to: &[usize]) -> Vec<Vec<(usize, usize, usize)>> {
    let fo = offsets(from);
    let to_off = offsets(to);
    let mut out = Vec::with_capacity(to.len());
    for j in 0..to.len() {
        let (start, end) = (to_off[j], to_off[j + 1]);
        let mut pieces = Vec::new();
        if start == end {
            // An empty axis: one empty piece of the first input block.
            pieces.push((0, 0, 0));
        }
        for i in 0..from.len() {
            let (fs, fe) = (fo[i], fo[i + 1]);
            let (s, e) = (start.max(fs), end.min(fe));
            if s < e {
                pieces.push((i, s - fs, e - fs));
            }
        }
        out.push(pieces);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_each_target_block() {
        let p = axis_pieces(&[3, 3, 1], &[2, 5]);
        assert_eq!(p[0], vec![(0, 0, 2)]);
        assert_eq!(p[1], vec![(0, 2, 3), (1, 0, 3), (2, 0, 1)]);
    }
}
