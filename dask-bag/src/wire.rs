//! Registered ops and codecs of the built-in word-count pipeline, so
//! `read_text(..).flat_map(words).frequencies()` (or `.count()`), and the
//! same over a materialized bag of lines, run on `dask worker` processes.
//!
//! The ops are serde structs registered in dask-core's op registry
//! (`register_op_type!`): a worker process that links dask-bag (the `dask`
//! binary does) rebuilds them from their tag and parameters. Text blocks,
//! partial word counts and the final `(word, count)` pairs travel with
//! postcard codecs. Everything else in a bag (closures given to `map`,
//! `filter`, `topk`, ...) stays in-process: a client refuses it for worker
//! processes with `OpNotRegistered`.

use std::marker::PhantomData;

use dask_core::{BoxError, Op, Value};
use serde::{Deserialize, Serialize};

use crate::stage::{split_part, FromVec};
use crate::text::{Block, ReadText};
use crate::words::{for_each_word, Counts, TextSource};

/// The stage below `words` a registered word reduction reads.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) enum TextInput {
    /// A [`read_text`](crate::read_text) block: the task's argument is a `Block`.
    ReadText,
    /// A materialized partition of lines: the argument is a `Vec<String>`.
    Lines,
}

/// What a word reduction computes per partition.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) enum WordsReduction {
    /// Word counts (`frequencies`): a [`Counts`] map.
    Frequencies,
    /// The number of words (`count`): a `usize`.
    Count,
}

/// The per-partition step of a fused word reduction.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WordsPart {
    pub(crate) name: String,
    pub(crate) input: TextInput,
    pub(crate) reduction: WordsReduction,
}

impl Op for WordsPart {
    fn name(&self) -> &str {
        &self.name
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        let (part, args) = split_part(args)?;
        let lines = FromVec::<String>(PhantomData);
        let text: &dyn TextSource = match self.input {
            TextInput::ReadText => &ReadText,
            TextInput::Lines => &lines,
        };
        Ok(match self.reduction {
            WordsReduction::Frequencies => {
                let mut counts = Counts::default();
                text.for_each_text(part, args, &mut |t| counts.add_text(t))?;
                Value::new(counts)
            }
            WordsReduction::Count => {
                let mut n = 0usize;
                text.for_each_text(part, args, &mut |t| for_each_word(t, |_| n += 1))?;
                Value::new(n)
            }
        })
    }
}

/// Merges word counts: a combine step (gives [`Counts`]) or the final one
/// (gives the `(word, count)` pairs of the one-partition bag).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct MergeCounts {
    pub(crate) name: String,
    pub(crate) last: bool,
}

impl Op for MergeCounts {
    fn name(&self) -> &str {
        &self.name
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        let parts = args
            .iter()
            .map(|v| v.downcast_ref::<Counts>())
            .collect::<dask_core::Result<Vec<&Counts>>>()?;
        let merged = Counts::merge(&parts);
        Ok(if self.last {
            Value::new(merged.into_pairs())
        } else {
            Value::new(merged)
        })
    }
}

/// Adds `usize` partial counts (combine and final step of `count`).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SumCounts {
    pub(crate) name: String,
}

impl Op for SumCounts {
    fn name(&self) -> &str {
        &self.name
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        let mut total = 0usize;
        for v in args {
            total += *v.downcast_ref::<usize>()?;
        }
        Ok(Value::new(total))
    }
}

dask_core::register_op_type!(WordsPart);
dask_core::register_op_type!(MergeCounts);
dask_core::register_op_type!(SumCounts);
dask_core::register_codec!(Block);
dask_core::register_codec!(Counts);
dask_core::register_codec!(Vec<(String, usize)>);
