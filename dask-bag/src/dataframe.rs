//! [`Bag::to_dataframe`] and [`Bag::to_dataframe_json`]: a bag's partitions
//! as a dask-dataframe [`DataFrame`] (cargo feature `dataframe`).
//!
//! Each partition's frame is built in the partition's task, fused with the
//! bag's pending pipeline (`read_text(..).map(parse).to_dataframe(..)` reads,
//! parses and builds each frame in one task). The schema (Dask's `meta`) is
//! known when the dataframe is built: given, or found by calling the
//! conversion on an empty partition (`to_dataframe`), or from the records of
//! the first non-empty partition (`to_dataframe_json`, which computes it).
//! Every partition's frame is checked against it when computed.

use std::sync::Arc;

use dask_core::{BoxError, Graph, HighLevelGraph, Key, Op, Scheduler, Value};
use dask_dataframe::polars::prelude as pl;
use dask_dataframe::polars::prelude::{DataType, PlSmallStr, PolarsResult, SchemaRef};
use dask_dataframe::DataFrame;
use serde_json::Value as Json;

use crate::bag::{new_name, take_vec, Bag};
use crate::stage::{split_part, CollectOp, DynStage};
use crate::{Error, Result};

/// The conversion of one partition into a polars frame.
type FrameFn<T> = dyn Fn(Vec<T>) -> PolarsResult<pl::DataFrame> + Send + Sync;

/// The op of a `to_dataframe` partition: runs the pipeline, collects the
/// items and converts them.
struct ToFrameOp<T> {
    name: String,
    stage: DynStage<T>,
    f: Arc<FrameFn<T>>,
}

impl<T: Send + Sync + 'static> Op for ToFrameOp<T> {
    fn name(&self) -> &str {
        &self.name
    }
    fn call(&self, args: &[Value]) -> std::result::Result<Value, BoxError> {
        let (part, args) = split_part(args)?;
        let items = self.stage.open(part, args)?.collect::<Result<Vec<T>>>()?;
        let df = (self.f)(items).map_err(|source| Error::Frame {
            what: format!("partition {part}"),
            source,
        })?;
        Ok(Value::new(df))
    }
}

impl<T: Clone + Send + Sync + 'static> Bag<T> {
    /// The bag as a dask-dataframe [`DataFrame`]: `f` turns each partition's
    /// items (a `Vec<T>`, in order) into a polars frame, in the partition's
    /// task (fused with the bag's pending `map`/`filter`/... steps).
    ///
    /// `meta` is the schema of `f`'s frames; with `None` it is found by
    /// calling `f` on an empty `Vec` (as Dask finds a meta), so `f` must
    /// build typed columns even from no items (`Series::new` of an empty
    /// `Vec<i64>` is an `Int64` column). A partition whose frame disagrees
    /// with `meta` fails its task with [`dask_dataframe::Error::NotAligned`].
    /// The dataframe has one partition per bag partition and unknown
    /// divisions.
    ///
    /// ```
    /// use dask_bag::Bag;
    /// use dask_core::Collection;
    /// use dask_dataframe::polars::prelude::*;
    /// use dask_sync_scheduler::SyncScheduler;
    ///
    /// let bag = Bag::from_sequence(vec![("a".to_string(), 1i64), ("b".to_string(), 2)], 2).unwrap();
    /// let ddf = bag
    ///     .to_dataframe(
    ///         |rows: Vec<(String, i64)>| {
    ///             let (names, counts): (Vec<String>, Vec<i64>) = rows.into_iter().unzip();
    ///             df!("name" => names, "count" => counts)
    ///         },
    ///         None,
    ///     )
    ///     .unwrap();
    /// assert_eq!(ddf.columns(), ["name", "count"]);
    /// let out = ddf.compute_with(&SyncScheduler::new()).unwrap();
    /// assert_eq!(out.column("count").unwrap().i64().unwrap().get(1), Some(2));
    /// ```
    ///
    /// Errors: [`Error::Frame`] if `meta` is `None` and `f` fails on an empty
    /// partition (pass `meta`). In a task: [`Error::Frame`] if `f` fails on a
    /// partition, any error of the bag's pipeline.
    pub fn to_dataframe<F>(&self, f: F, meta: Option<SchemaRef>) -> Result<DataFrame>
    where
        F: Fn(Vec<T>) -> PolarsResult<pl::DataFrame> + Send + Sync + 'static,
    {
        let meta = match meta {
            Some(m) => m,
            None => f(Vec::new())
                .map_err(|source| Error::Frame {
                    what: "an empty partition, called to find the meta (pass `meta` if the \
                           function cannot take one)"
                        .into(),
                    source,
                })?
                .schema()
                .clone(),
        };
        let f: Arc<FrameFn<T>> = Arc::new(f);
        self.frame_layer(meta, |name, stage| -> Arc<dyn Op> {
            Arc::new(ToFrameOp { name, stage, f })
        })
    }

    /// A dataframe of one task per partition running `op` (made from the op's
    /// name and the bag's pipeline), whose frames must have schema `meta`.
    fn frame_layer(
        &self,
        meta: SchemaRef,
        op: impl FnOnce(String, DynStage<T>) -> Arc<dyn Op>,
    ) -> Result<DataFrame> {
        let src = self.source();
        let op = op(src.op_name("to_dataframe"), src.stage.clone());
        let name = new_name("to_dataframe");
        let mut graph = Graph::with_capacity(self.npartitions);
        let keys: Vec<Key> = (0..self.npartitions)
            .map(|i| Key::new(name.clone(), [i as u64]))
            .collect();
        for (i, k) in keys.iter().enumerate() {
            graph.insert(k.clone(), src.task(op.clone(), i));
        }
        let hlg = HighLevelGraph::from_layer(name, graph, &[&src.graph]);
        Ok(DataFrame::from_graph(&hlg, &keys, meta)?)
    }

    /// The items of partition `i` alone, computed on `scheduler`.
    fn partition_items(&self, i: usize, scheduler: &dyn Scheduler) -> Result<Vec<T>> {
        let src = self.source();
        let op: Arc<dyn Op> = Arc::new(CollectOp {
            name: src.op_name("to_dataframe-meta"),
            stage: src.stage.clone(),
        });
        let name = new_name("to_dataframe-meta");
        let key = Key::new(name.clone(), [i as u64]);
        let mut graph = Graph::with_capacity(1);
        graph.insert(key.clone(), src.task(op, i));
        let hlg = HighLevelGraph::from_layer(name, graph, &[&src.graph]);
        let keys = [key];
        let graph = dask_core::fuse(&hlg.cull_layers(&keys).to_graph(), &keys)?;
        let value = scheduler.compute(&graph, &keys)?.into_iter().next().ok_or(
            dask_core::Error::WrongNumberOfValues {
                expected: 1,
                found: 0,
            },
        )?;
        Ok(take_vec::<T>(value)?)
    }
}

/// The dtypes [`Bag::to_dataframe_json`] builds columns of.
const JSON_DTYPES: &str = "Boolean, Int64, Float64 and String";

fn describe(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(n) if n.is_i64() => "an integer",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// The dtype a JSON value asks for, or why it has none.
fn json_dtype(v: &Json) -> std::result::Result<Option<DataType>, &'static str> {
    Ok(match v {
        Json::Null => None,
        Json::Bool(_) => Some(DataType::Boolean),
        Json::Number(n) if n.is_i64() => Some(DataType::Int64),
        Json::Number(_) => Some(DataType::Float64),
        Json::String(_) => Some(DataType::String),
        Json::Array(_) | Json::Object(_) => {
            return Err("a nested value (an array or object): pluck or map it to a scalar first, or serialize it to a string")
        }
    })
}

/// The schema of JSON records: columns in order of first appearance, dtypes
/// from the values (integers and numbers together are Float64).
fn infer_schema(records: &[Json], partition: usize) -> Result<SchemaRef> {
    let fail = |reason: String| Error::JsonInference {
        reason: format!("partition {partition}, {reason}"),
    };
    let mut columns: Vec<(String, Option<DataType>)> = Vec::new();
    for (r, rec) in records.iter().enumerate() {
        let Json::Object(obj) = rec else {
            return Err(fail(format!(
                "record {r}: {} where an object (one row) is expected",
                describe(rec)
            )));
        };
        for (k, v) in obj {
            let dtype =
                json_dtype(v).map_err(|why| fail(format!("record {r}, key `{k}`: {why}")))?;
            let slot = match columns.iter().position(|(name, _)| name == k) {
                Some(i) => &mut columns[i].1,
                None => {
                    columns.push((k.clone(), None));
                    &mut columns.last_mut().expect("just pushed").1
                }
            };
            *slot = match (slot.take(), dtype) {
                (old, None) => old,
                (None, new) => new,
                (Some(a), Some(b)) if a == b => Some(a),
                (Some(DataType::Int64), Some(DataType::Float64))
                | (Some(DataType::Float64), Some(DataType::Int64)) => Some(DataType::Float64),
                (Some(a), Some(b)) => {
                    return Err(fail(format!(
                        "key `{k}` holds {a} values and, in record {r}, a {b} value"
                    )))
                }
            };
        }
    }
    let mut fields = Vec::with_capacity(columns.len());
    for (name, dtype) in columns {
        let dtype = dtype.ok_or_else(|| fail(format!("key `{name}` is null in every record")))?;
        fields.push((PlSmallStr::from(name), dtype));
    }
    Ok(Arc::new(pl::Schema::from_iter(fields)))
}

/// One column being filled from records.
enum Builder {
    Bool(Vec<Option<bool>>),
    I64(Vec<Option<i64>>),
    F64(Vec<Option<f64>>),
    Str(Vec<Option<String>>),
}

impl Builder {
    fn new(dtype: &DataType, len: usize) -> Option<Builder> {
        Some(match dtype {
            DataType::Boolean => Builder::Bool(Vec::with_capacity(len)),
            DataType::Int64 => Builder::I64(Vec::with_capacity(len)),
            DataType::Float64 => Builder::F64(Vec::with_capacity(len)),
            DataType::String => Builder::Str(Vec::with_capacity(len)),
            _ => return None,
        })
    }

    /// Appends `v` (`None`: a missing key); false if `v` does not fit.
    fn push(&mut self, v: Option<&Json>) -> bool {
        let v = v.filter(|v| !v.is_null());
        match (self, v) {
            (Builder::Bool(c), None) => c.push(None),
            (Builder::I64(c), None) => c.push(None),
            (Builder::F64(c), None) => c.push(None),
            (Builder::Str(c), None) => c.push(None),
            (Builder::Bool(c), Some(Json::Bool(b))) => c.push(Some(*b)),
            (Builder::I64(c), Some(Json::Number(n))) if n.is_i64() => c.push(n.as_i64()),
            (Builder::F64(c), Some(Json::Number(n))) => c.push(n.as_f64()),
            (Builder::Str(c), Some(Json::String(s))) => c.push(Some(s.clone())),
            _ => return false,
        }
        true
    }

    fn finish(self, name: PlSmallStr) -> pl::Column {
        use pl::NamedFrom;
        let s = match self {
            Builder::Bool(c) => pl::Series::new(name, c),
            Builder::I64(c) => pl::Series::new(name, c),
            Builder::F64(c) => pl::Series::new(name, c),
            Builder::Str(c) => pl::Series::new(name, c),
        };
        s.into()
    }
}

/// The frame of one partition's JSON records under `schema` (checked to hold
/// only [`JSON_DTYPES`]).
fn json_frame(records: Vec<Json>, schema: &pl::Schema, partition: usize) -> Result<pl::DataFrame> {
    let len = records.len();
    let mut builders: Vec<(PlSmallStr, Builder)> = schema
        .iter()
        .map(|(name, dtype)| {
            Builder::new(dtype, len)
                .map(|b| (name.clone(), b))
                .ok_or_else(|| unsupported_dtype(name, dtype))
        })
        .collect::<Result<_>>()?;
    let bad = |record: usize, problem: String| Error::JsonRecord {
        partition,
        record,
        problem,
    };
    for (r, rec) in records.iter().enumerate() {
        let obj = match rec {
            Json::Object(o) => o,
            other => {
                return Err(bad(
                    r,
                    format!("{} where an object (one row) is expected", describe(other)),
                ))
            }
        };
        if let Some(k) = obj.keys().find(|k| schema.get(k).is_none()) {
            let columns: Vec<&str> = schema.iter_names().map(|n| n.as_str()).collect();
            return Err(bad(
                r,
                format!("key `{k}` is not a column (the columns are {columns:?})"),
            ));
        }
        for (name, b) in &mut builders {
            let v = obj.get(name.as_str());
            if !b.push(v) {
                let dtype = schema
                    .get(name.as_str())
                    .map_or(String::new(), |d| d.to_string());
                return Err(bad(
                    r,
                    format!(
                        "column `{name}` is {dtype}, but the record has {} there",
                        v.map_or("nothing", describe)
                    ),
                ));
            }
        }
    }
    let columns = builders.into_iter().map(|(n, b)| b.finish(n)).collect();
    pl::DataFrame::new(len, columns).map_err(|source| Error::Frame {
        what: format!("partition {partition}"),
        source,
    })
}

fn unsupported_dtype(name: &str, dtype: &DataType) -> Error {
    Error::invalid(
        "meta",
        format!(
            "column `{name}` has dtype {dtype}; JSON records convert to {JSON_DTYPES} columns: \
             use one of those and convert afterwards (`astype`)"
        ),
    )
}

impl Bag<Json> {
    /// JSON objects as rows of a dask-dataframe [`DataFrame`]: each key is a
    /// column, a missing key or `null` is a null. Columns are Boolean, Int64,
    /// Float64 (numbers that are not all integers) or String.
    ///
    /// `meta` gives the columns and dtypes. With `None` they are inferred
    /// from the first partition that has records, computed now on the
    /// default scheduler (see [`Bag::to_dataframe_json_with`]): columns in
    /// the order keys first appear (in an object, serde_json's order:
    /// alphabetical unless its `preserve_order` feature is on), dtypes from
    /// the values. Later partitions are not
    /// looked at: one whose values do not fit (a float in a column inferred
    /// as Int64, a new key) fails its task, so pass `meta` when the first
    /// records may not tell the whole story.
    ///
    /// ```
    /// use dask_bag::Bag;
    /// use dask_core::Collection;
    /// use dask_sync_scheduler::SyncScheduler;
    /// use serde_json::json;
    ///
    /// let s = SyncScheduler::new();
    /// let records = vec![
    ///     json!({"name": "a", "x": 1.0}),
    ///     json!({"name": "b", "x": 2.5}),
    ///     json!({"name": "c"}),
    /// ];
    /// let bag = Bag::from_sequence(records, 2).unwrap();
    /// let ddf = bag.to_dataframe_json_with(None, &s).unwrap();
    /// assert_eq!(ddf.columns(), ["name", "x"]);
    /// let out = ddf.compute_with(&s).unwrap();
    /// let x = out.column("x").unwrap().f64().unwrap();
    /// assert_eq!((x.get(0), x.get(1), x.get(2)), (Some(1.0), Some(2.5), None));
    /// ```
    ///
    /// Errors: [`Error::JsonInference`] if the columns cannot be inferred (no
    /// records, a key that is always null, mixed types, nested values): pass
    /// `meta`; [`Error::InvalidArgument`] for a `meta` dtype other than those
    /// four. In a task: [`Error::JsonRecord`] for a record that is not an
    /// object, has a key that is not a column, or a value of another type
    /// than its column's.
    pub fn to_dataframe_json(&self, meta: Option<SchemaRef>) -> Result<DataFrame> {
        match meta {
            Some(meta) => self.json_frames(meta),
            None => {
                let s = dask_core::scheduler::default_scheduler()?;
                self.to_dataframe_json_with(None, &*s)
            }
        }
    }

    /// [`Bag::to_dataframe_json`], inferring the columns (when `meta` is
    /// `None`) on `scheduler`: partitions are computed one at a time, in
    /// order, until one has records.
    pub fn to_dataframe_json_with(
        &self,
        meta: Option<SchemaRef>,
        scheduler: &dyn Scheduler,
    ) -> Result<DataFrame> {
        if let Some(meta) = meta {
            return self.json_frames(meta);
        }
        for i in 0..self.npartitions {
            let records = self.partition_items(i, scheduler)?;
            if !records.is_empty() {
                let meta = infer_schema(&records, i)?;
                return self.json_frames(meta);
            }
        }
        Err(Error::JsonInference {
            reason: format!("none of the {} partitions has a record", self.npartitions),
        })
    }

    fn json_frames(&self, meta: SchemaRef) -> Result<DataFrame> {
        if let Some((name, dtype)) = meta.iter().find(|(_, d)| Builder::new(d, 0).is_none()) {
            return Err(unsupported_dtype(name, dtype));
        }
        // A JSON error must reach the caller as itself (not inside a polars
        // error), so the conversion is its own op, not a `to_dataframe` closure.
        let schema = meta.clone();
        self.frame_layer(meta, |name, stage| -> Arc<dyn Op> {
            Arc::new(JsonFrameOp {
                name,
                stage,
                schema,
            })
        })
    }
}

/// The op of a `to_dataframe_json` partition.
struct JsonFrameOp {
    name: String,
    stage: DynStage<Json>,
    schema: SchemaRef,
}

impl Op for JsonFrameOp {
    fn name(&self) -> &str {
        &self.name
    }
    fn call(&self, args: &[Value]) -> std::result::Result<Value, BoxError> {
        let (part, args) = split_part(args)?;
        let records = self
            .stage
            .open(part, args)?
            .collect::<Result<Vec<Json>>>()?;
        Ok(Value::new(json_frame(records, &self.schema, part)?))
    }
}
