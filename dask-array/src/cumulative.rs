//! Cumulative operations along an axis: [`Array::cumsum`], [`Array::cumprod`].
//!
//! Each block is accumulated on its own; then a chain of small "carry" tasks
//! passes the running total (one slice of the block, not the block) from each
//! block to the next along the axis, and each block adds (or multiplies by) the
//! carry it receives. Blocks never wait for whole neighbours, only for carries.

use std::marker::PhantomData;
use std::sync::Arc;

use dask_core::{tokenize, Arg, BoxError, Graph, HighLevelGraph, Op, Task, Value};
use ndarray::{ArrayD, Axis};
use serde::{Deserialize, Serialize};

use crate::array::{block_key, chunk_arg, new_layer, Array, Source};
use crate::element::Number;
use crate::error::Result;

/// The accumulation: running sum or product.
#[derive(Clone, Copy, Serialize, Deserialize)]
enum Acc {
    Sum,
    Prod,
}

impl Acc {
    fn fun<T: Number>(self) -> fn(T, T) -> T {
        match self {
            Acc::Sum => |a, b| a + b,
            Acc::Prod => |a, b| a * b,
        }
    }
}

/// What a task of a cumulative layer does.
#[derive(Clone, Copy, Serialize, Deserialize)]
enum Step {
    /// Accumulates one block on its own.
    Local,
    /// The carry after the first block: its last slice.
    FirstCarry,
    /// The carry after block `j`: the previous carry combined with the last
    /// slice of local block `j`.
    NextCarry,
    /// A local block combined with the carry it receives.
    Apply,
}

/// The op of every task of [`Array::cumsum`] / [`Array::cumprod`].
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
struct Cumulative<T> {
    acc: Acc,
    step: Step,
    axis: usize,
    #[serde(skip)]
    _t: PhantomData<T>,
}

impl<T: Number> Cumulative<T> {
    /// The last slice along the axis, keeping the axis (length 1).
    fn last(&self, b: &ArrayD<T>) -> Result<ArrayD<T>, BoxError> {
        if self.axis >= b.ndim() {
            return Err("cumulative: axis out of range for the block (bug in dask-array)".into());
        }
        let n = b.shape()[self.axis];
        Ok(b.index_axis(Axis(self.axis), n.saturating_sub(1))
            .insert_axis(Axis(self.axis))
            .to_owned())
    }
}

impl<T: Number> Op for Cumulative<T> {
    fn name(&self) -> &str {
        match (self.acc, self.step) {
            (Acc::Sum, Step::Local) => "dask_array::cumsum-local",
            (Acc::Sum, Step::FirstCarry | Step::NextCarry) => "dask_array::cumsum-carry",
            (Acc::Sum, Step::Apply) => "dask_array::cumsum-apply",
            (Acc::Prod, Step::Local) => "dask_array::cumprod-local",
            (Acc::Prod, Step::FirstCarry | Step::NextCarry) => "dask_array::cumprod-carry",
            (Acc::Prod, Step::Apply) => "dask_array::cumprod-apply",
        }
    }

    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        let f = self.acc.fun::<T>();
        let out = match self.step {
            Step::Local => {
                let mut b = chunk_arg::<T>(args, 0)?.clone();
                if self.axis >= b.ndim() {
                    return Err("cumulative: axis out of range (bug in dask-array)".into());
                }
                b.accumulate_axis_inplace(Axis(self.axis), |&prev, cur| *cur = f(prev, *cur));
                b
            }
            Step::FirstCarry => self.last(chunk_arg::<T>(args, 0)?)?,
            Step::NextCarry => {
                let prev = chunk_arg::<T>(args, 0)?;
                let l = self.last(chunk_arg::<T>(args, 1)?)?;
                if prev.shape() != l.shape() {
                    return Err("cumulative: carry shapes differ (bug in dask-array)".into());
                }
                ndarray::Zip::from(prev)
                    .and(&l)
                    .map_collect(|&p, &x| f(p, x))
            }
            Step::Apply => {
                let b = chunk_arg::<T>(args, 0)?;
                let c = chunk_arg::<T>(args, 1)?;
                let c = c
                    .broadcast(b.raw_dim())
                    .ok_or("carry does not broadcast to its block (bug in dask-array)")?;
                ndarray::Zip::from(b).and(c).map_collect(|&x, &p| f(p, x))
            }
        };
        Ok(Value::new(out))
    }
}
register_each!(Cumulative: f64, f32, i64, i32);

impl<T: Number> Array<T> {
    /// The running sum along `axis`, like `numpy.cumsum(x, axis)`. Errors if
    /// the axis is out of range.
    pub fn cumsum(&self, axis: usize) -> Result<Array<T>> {
        self.cumulative("cumsum", axis, Acc::Sum)
    }

    /// The running product along `axis`, like `numpy.cumprod(x, axis)`.
    pub fn cumprod(&self, axis: usize) -> Result<Array<T>> {
        self.cumulative("cumprod", axis, Acc::Prod)
    }

    fn cumulative(&self, op: &'static str, axis: usize, acc: Acc) -> Result<Array<T>> {
        self.check_axis(axis)?;
        let step_op = |step| -> Arc<dyn Op> {
            Arc::new(Cumulative::<T> {
                acc,
                step,
                axis,
                _t: PhantomData,
            })
        };
        let m = self.meta();
        let token = tokenize(&(op, &*m.name, axis));
        let source = Source::new(m, true);

        let local_name: Arc<str> = format!("{op}-local-{token}").into();
        let local_op = step_op(Step::Local);
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
        let first_carry = step_op(Step::FirstCarry);
        let next_carry = step_op(Step::NextCarry);
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

        let add_op = step_op(Step::Apply);
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
