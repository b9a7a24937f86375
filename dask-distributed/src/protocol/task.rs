//! Tasks on the wire: the op's tag and parameters, arguments as keys, nested
//! tasks, lists, and literal values carried in data frames by their codec.

use std::sync::Arc;

use bytes::Bytes;
use dask_core::{codec, op, op::build_op, Arg, Key, Task};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A task as sent to a worker; literal values live in the message's data frames.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireTask {
    /// The op's registered tag.
    pub op: String,
    /// The op's parameters.
    pub params: Vec<u8>,
    /// The arguments.
    pub args: Vec<WireArg>,
}

/// One argument of a [`WireTask`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireArg {
    /// Another task's value.
    Key(Key),
    /// A literal: data frame `frame`, decoded by codec `codec`.
    Value {
        /// The codec's tag.
        codec: String,
        /// Index into the data frames.
        frame: u32,
    },
    /// A nested task.
    Task(Box<WireTask>),
    /// A list of arguments.
    List(Vec<WireArg>),
}

/// Encodes `task` (the task of `key`) for a worker process: the header part and
/// the data frames of its literal values.
///
/// Refused before anything is sent: an op that is not registered
/// ([`dask_core::Error::OpNotRegistered`]: closures run only in-process) and a
/// literal whose type has no codec ([`dask_core::Error::NoCodec`]).
pub fn encode_task(key: &Key, task: &Task) -> Result<(WireTask, Vec<Bytes>)> {
    let mut frames = Vec::new();
    let wire = encode_inner(key, task, &mut frames)?;
    Ok((wire, frames))
}

fn encode_inner(key: &Key, task: &Task, frames: &mut Vec<Bytes>) -> Result<WireTask> {
    let (tag, params) =
        op::wire_form(&*task.op)?.ok_or_else(|| dask_core::Error::OpNotRegistered {
            key: key.clone(),
            op: task.op.name().to_owned(),
        })?;
    Ok(WireTask {
        op: tag.to_owned(),
        params,
        args: task
            .args
            .iter()
            .map(|a| encode_arg(key, a, frames))
            .collect::<Result<_>>()?,
    })
}

fn encode_arg(key: &Key, arg: &Arg, frames: &mut Vec<Bytes>) -> Result<WireArg> {
    Ok(match arg {
        Arg::Key(k) => WireArg::Key(k.clone()),
        Arg::Value(v) => {
            let (tag, bytes) = codec::encode_value(v)?;
            frames.push(Bytes::from(bytes));
            WireArg::Value {
                codec: tag.to_owned(),
                frame: (frames.len() - 1) as u32,
            }
        }
        Arg::Task(t) => WireArg::Task(Box::new(encode_inner(key, t, frames)?)),
        Arg::List(items) => WireArg::List(
            items
                .iter()
                .map(|a| encode_arg(key, a, frames))
                .collect::<Result<_>>()?,
        ),
    })
}

/// Rebuilds a task from its wire form and data frames, with ops from this
/// process's registry.
pub fn decode_task(wire: &WireTask, frames: &[Bytes]) -> Result<Task> {
    let op = build_op(&wire.op, &wire.params)?;
    let args = wire
        .args
        .iter()
        .map(|a| decode_arg(a, frames))
        .collect::<Result<_>>()?;
    Ok(Task::new(op, args))
}

fn decode_arg(arg: &WireArg, frames: &[Bytes]) -> Result<Arg> {
    Ok(match arg {
        WireArg::Key(k) => Arg::Key(k.clone()),
        WireArg::Value { codec, frame } => {
            let bytes = frames
                .get(*frame as usize)
                .ok_or_else(|| Error::Malformed {
                    what: "task",
                    detail: format!(
                        "argument refers to data frame {frame}, the message has {}",
                        frames.len()
                    ),
                })?;
            Arg::Value(codec::decode_value(codec, bytes)?)
        }
        WireArg::Task(t) => Arg::Task(Box::new(decode_task(t, frames)?)),
        WireArg::List(items) => Arg::List(
            items
                .iter()
                .map(|a| decode_arg(a, frames))
                .collect::<Result<_>>()?,
        ),
    })
}

/// Checks that every task of a graph can run on worker processes, so a bad
/// graph is refused before anything is submitted.
pub fn check_graph(graph: &dask_core::Graph) -> Result<()> {
    for (key, task) in graph.iter() {
        encode_task(key, task)?;
    }
    Ok(())
}

/// Shared form of a decoded task, as workers keep it.
pub type SharedTask = Arc<Task>;

#[cfg(test)]
mod tests {
    use dask_core::{BoxError, Op, Value};

    use super::*;

    #[derive(Serialize, Deserialize)]
    struct Affine {
        mul: i64,
        add: i64,
    }

    impl Op for Affine {
        fn name(&self) -> &str {
            "affine"
        }
        fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
            Ok(Value::new(
                args[0].downcast_ref::<i64>()? * self.mul + self.add,
            ))
        }
    }
    dask_core::register_op_type!(Affine);

    #[derive(Serialize, Deserialize)]
    struct NotRegistered;

    impl Op for NotRegistered {
        fn name(&self) -> &str {
            "not_registered"
        }
        fn call(&self, _: &[Value]) -> Result<Value, BoxError> {
            Ok(Value::new(()))
        }
    }

    #[test]
    fn struct_ops_travel_with_their_parameters() {
        let inner = Task::new(Arc::new(Affine { mul: 3, add: 1 }), vec![Arg::value(4i64)]);
        let task = Task::new(
            Arc::new(Affine { mul: -2, add: 5 }),
            vec![Arg::Task(Box::new(inner.clone()))],
        );
        let key = Key::named("t");
        let (wire, frames) = encode_task(&key, &task).unwrap();
        let back = decode_task(&wire, &frames).unwrap();
        let run = |t: &Task| {
            let v = t.execute(&key, |_| unreachable!("no keys")).unwrap();
            *v.downcast_ref::<i64>().unwrap()
        };
        assert_eq!(run(&back), run(&task));
    }

    #[test]
    fn unregistered_struct_op_is_refused_naming_it() {
        let task = Task::new(Arc::new(NotRegistered), vec![]);
        let err = encode_task(&Key::named("k"), &task).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("not_registered") && text.contains("register_op_type!"),
            "{text}"
        );
    }
}
