//! Cumulative operations along an axis: [`Array::cumsum`], [`Array::cumprod`].
//!
//! Each block is accumulated on its own; then a chain of small "carry" tasks
//! passes the running total (one slice of the block, not the block) from each
//! block to the next along the axis, and each block adds (or multiplies by) the
//! carry it receives. Blocks never wait for whole neighbours, only for carries.

use std::sync::Arc;

use dask_core::{tokenize, Arg, Graph, HighLevelGraph, Task, Value};
use ndarray::{ArrayD, Axis};

use crate::array::{block_key, block_op, chunk_arg, new_layer, Array, Source};
use crate::element::Number;
use crate::error::Result;

impl<T: Number> Array<T> {
    /// The running sum along `axis`, like `numpy.cumsum(x, axis)`. Errors if
    /// the axis is out of range.
    pub fn cumsum(&self, axis: usize) -> Result<Array<T>> {
        self.cumulative("cumsum", axis, |a, b| a + b)
    }

    /// The running product along `axis`, like `numpy.cumprod(x, axis)`.
    pub fn cumprod(&self, axis: usize) -> Result<Array<T>> {
        self.cumulative("cumprod", axis, |a, b| a * b)
    }

    fn cumulative(&self, op: &'static str, axis: usize, f: fn(T, T) -> T) -> Result<Array<T>> {
        self.check_axis(axis)?;
        let m = self.meta();
        let token = tokenize(&(op, &*m.name, axis));
        let source = Source::new(m, true);

        let local_name: Arc<str> = format!("{op}-local-{token}").into();
        let local_op = block_op(&format!("{op}-local"), move |args| {
            let mut b = chunk_arg::<T>(args, 0)?.clone();
            b.accumulate_axis_inplace(Axis(axis), |&prev, cur| *cur = f(prev, *cur));
            Ok(Value::new(b))
        });
        let mut local = Graph::new();
        for idx in m.chunks.block_indices() {
            local.insert(
                block_key(local_name.clone(), &idx),
                Task::new(local_op.clone(), vec![source.arg(&idx)]),
            );
        }
        let local = HighLevelGraph::from_layer(local_name.clone(), local, &[&source.graph()]);

        // carry[j] (j >= 1): the total of blocks 0..j along the axis, as a
        // slice of length 1 there.
        let carry_name: Arc<str> = format!("{op}-carry-{token}").into();
        let last = move |b: &ArrayD<T>| -> ArrayD<T> {
            let n = b.shape()[axis];
            b.index_axis(Axis(axis), n.saturating_sub(1))
                .insert_axis(Axis(axis))
                .to_owned()
        };
        let first_carry = block_op(&format!("{op}-carry"), move |args| {
            Ok(Value::new(last(chunk_arg::<T>(args, 0)?)))
        });
        let next_carry = block_op(&format!("{op}-carry"), move |args| {
            let prev = chunk_arg::<T>(args, 0)?;
            let l = last(chunk_arg::<T>(args, 1)?);
            Ok(Value::new(
                ndarray::Zip::from(prev)
                    .and(&l)
                    .map_collect(|&p, &x| f(p, x)),
            ))
        });
        let mut carry = Graph::new();
        for idx in m.chunks.block_indices() {
            let j = idx[axis];
            if j == 0 {
                continue;
            }
            let mut prev = idx.clone();
            prev[axis] = j - 1;
            let prev_local = Arg::Key(block_key(local_name.clone(), &prev));
            let task = if j == 1 {
                Task::new(first_carry.clone(), vec![prev_local])
            } else {
                let prev_carry = Arg::Key(block_key(carry_name.clone(), &prev));
                Task::new(next_carry.clone(), vec![prev_carry, prev_local])
            };
            carry.insert(block_key(carry_name.clone(), &idx), task);
        }
        let carry = HighLevelGraph::from_layer(carry_name.clone(), carry, &[&local]);

        let add_op = block_op(&format!("{op}-apply"), move |args| {
            let b = chunk_arg::<T>(args, 0)?;
            let c = chunk_arg::<T>(args, 1)?;
            let c = c
                .broadcast(b.raw_dim())
                .ok_or("carry does not broadcast to its block (bug in dask-array)")?;
            Ok(Value::new(
                ndarray::Zip::from(b).and(c).map_collect(|&x, &p| f(p, x)),
            ))
        });
        Ok(new_layer::<T>(
            format!("{op}-{token}"),
            m.chunks.clone(),
            &[carry],
            false,
            |idx| {
                let local_key = block_key(local_name.clone(), idx);
                if idx[axis] == 0 {
                    Task::alias(local_key)
                } else {
                    Task::new(
                        add_op.clone(),
                        vec![
                            Arg::Key(local_key),
                            Arg::Key(block_key(carry_name.clone(), idx)),
                        ],
                    )
                }
            },
        ))
    }
}
