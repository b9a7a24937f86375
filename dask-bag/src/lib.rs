//! Bags: partitioned collections of plain Rust values, processed like
//! iterators (Dask's `dask.bag`): logs, JSON lines, text.
//!
//! A [`Bag<T>`] is a lazy collection of any `T: Clone + Send + Sync + 'static`,
//! cut into partitions, each one `Vec<T>` value in a dask-core task graph under
//! the key `(name, i)`. Operations build the graph; a scheduler (sync,
//! threaded, ...) runs it when you call [`compute`](dask_core::Collection::compute)
//! or [`compute_with`](dask_core::Collection::compute_with).
//!
//! The key design decision: element-wise operations are *fused at build
//! time*. A bag keeps a pending per-partition iterator pipeline; `map`,
//! `filter`, `flat_map`, `pluck`, `zip` ... extend it instead of adding graph
//! layers, and the consumer (a reduction, a shuffle, a write, or computing the
//! bag itself) runs the whole pipeline in one task per partition, streaming
//! items without intermediate `Vec`s. `read_text(..).flat_map(..).frequencies()`
//! reads, splits and counts each block of text in one task.
//!
//! ```
//! use dask_bag::{read_text, Bag};
//! use dask_core::Collection;
//! use dask_threaded::ThreadedScheduler;
//!
//! let s = ThreadedScheduler::with_threads(2).unwrap();
//! let words = Bag::from_sequence(["a b", "b c", "b"].map(String::from), 2).unwrap();
//! let top = words
//!     .flat_map(|line| line.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
//!     .frequencies()
//!     .topk(1, |(_, n)| *n)
//!     .unwrap();
//! assert_eq!(top.compute_with(&s).unwrap(), vec![("b".to_string(), 3)]);
//!
//! let evens = Bag::range(10, 3).unwrap().filter(|x| x % 2 == 0).map(|x| x * x);
//! assert_eq!(evens.sum().compute_with(&s).unwrap(), 0 + 4 + 16 + 36 + 64);
//!
//! // Text files in, text files out.
//! let dir = std::env::temp_dir().join(format!("dask-bag-doc-{}", std::process::id()));
//! let written = evens.to_textfiles(dir.join("part-*.txt").to_str().unwrap()).unwrap();
//! assert_eq!(written.compute_with(&s).unwrap().len(), 3);
//! let back = read_text(dir.join("*.txt").to_str().unwrap(), None).unwrap();
//! assert_eq!(back.compute_with(&s).unwrap(), ["0", "4", "16", "36", "64"]);
//! std::fs::remove_dir_all(&dir).unwrap();
//! ```
//!
//! What runs where:
//! - construction: [`Bag::from_sequence`], [`Bag::from_sequence_with_partition_size`],
//!   [`Bag::range`], [`read_text`], [`Bag::from_delayed`];
//! - fused element-wise steps: [`Bag::map`], [`Bag::filter`], [`Bag::flat_map`],
//!   [`Bag::try_map`], [`Bag::flatten`], [`Bag::map_partitions`], [`Bag::starmap`], [`Bag::zip`],
//!   [`Bag::parse_json`], `pluck`;
//! - reductions (per-partition step fused, then a tree of fan-in
//!   [`Bag::with_split_every`], default 8): [`Bag::count`], [`Bag::sum`],
//!   [`Bag::min`], [`Bag::max`], [`Bag::mean`], [`Bag::fold`],
//!   [`Bag::reduction`] give a [`Delayed`](dask_core::Delayed) value;
//!   [`Bag::frequencies`], [`Bag::topk`], [`Bag::distinct`], [`Bag::foldby`] give
//!   a one-partition bag;
//! - shuffle: [`Bag::groupby`]; output: [`Bag::to_textfiles`], [`Bag::take`];
//! - with the cargo feature `dataframe` (off by default; the `dask` facade
//!   turns it on with its `bag` and `dataframe` features): `Bag::to_dataframe`
//!   (a conversion of each partition into a polars frame) and
//!   `Bag::to_dataframe_json` (JSON objects as rows) give a dask-dataframe
//!   `DataFrame`.
//!
//! Errors: building a bag returns [`Result`]; a failure inside a task (an
//! unreadable line, a panicking closure) comes back from `compute` as
//! [`dask_core::Error::TaskFailed`] naming the partition's key, with the bag
//! [`Error`] (if any) in its source chain: [`Error::find`].
//!
//! Word counts are fused further: `flat_map(words)` (the function [`words`]
//! itself) followed by [`Bag::frequencies`] or [`Bag::count`] counts borrowed
//! `&str` words, allocating a `String` only for a word new to a partition, and
//! reads `read_text` blocks in pieces of whole lines (no `String` per line).
//!
//! Most ops are closures, so bags run on in-process schedulers (sync,
//! threaded, a `LocalCluster` of threads). The built-in word count,
//! `read_text(..)` or a materialized bag of lines, then `flat_map(words)`,
//! then `frequencies()` or `count()`, is made of registered ops and codecs
//! (dask-core's registries), so it also runs on `dask worker` processes; a
//! closure anywhere in a graph is refused for them with `OpNotRegistered`.
#![warn(missing_docs)]

mod bag;
#[cfg(feature = "dataframe")]
mod dataframe;
mod error;
mod groupby;
mod json;
pub mod portable;
mod reduce;
mod stage;
mod text;
mod wire;
mod words;

pub use bag::{Bag, DEFAULT_SPLIT_EVERY};
pub use error::{Error, Result};
pub use json::Field;
pub use reduce::AsF64;
pub use stage::Items;
pub use text::read_text;
pub use words::{words, Words};

#[doc(hidden)]
pub mod __private {
    pub use inventory;
}

// `flat_map(words)` is portable: worker processes rebuild it by name.
register_bag_fn!(flat_map words);
