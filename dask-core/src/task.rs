//! [`Task`] and [`Arg`]: an op applied to literals, other keys, nested tasks and lists.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::op::{Op, IDENTITY};
use crate::{BoxError, Error, Key, Panicked, Result, Value};

/// One argument of a task.
#[derive(Clone, Debug)]
pub enum Arg {
    /// The value of another task (a dependency).
    Key(Key),
    /// A literal value.
    Value(Value),
    /// A nested task, evaluated inline (what fusion produces).
    Task(Box<Task>),
    /// A list of arguments, passed to the op as one `Vec<Value>`.
    List(Vec<Arg>),
}

impl Arg {
    /// A literal argument.
    pub fn value<T: std::any::Any + Send + Sync>(v: T) -> Arg {
        Arg::Value(Value::new(v))
    }

    fn for_each_key<'a>(&'a self, f: &mut impl FnMut(&'a Key)) {
        match self {
            Arg::Key(k) => f(k),
            Arg::Value(_) => {}
            Arg::Task(t) => t.for_each_key(f),
            Arg::List(items) => items.iter().for_each(|a| a.for_each_key(f)),
        }
    }

    fn resolve(&self, next: &mut impl FnMut(&Key) -> Value) -> Result<Value, (String, BoxError)> {
        Ok(match self {
            Arg::Key(k) => next(k),
            Arg::Value(v) => v.clone(),
            Arg::Task(t) => t.call(next)?,
            Arg::List(items) => Value::new(
                items
                    .iter()
                    .map(|a| a.resolve(next))
                    .collect::<Result<Vec<Value>, _>>()?,
            ),
        })
    }

    fn map_keys(&mut self, f: &mut impl FnMut(&Key) -> Option<Arg>) {
        match self {
            Arg::Key(k) => {
                if let Some(new) = f(k) {
                    *self = new;
                }
            }
            Arg::Value(_) => {}
            Arg::Task(t) => t.args.iter_mut().for_each(|a| a.map_keys(f)),
            Arg::List(items) => items.iter_mut().for_each(|a| a.map_keys(f)),
        }
    }
}

impl From<Key> for Arg {
    fn from(k: Key) -> Arg {
        Arg::Key(k)
    }
}

impl From<Value> for Arg {
    fn from(v: Value) -> Arg {
        Arg::Value(v)
    }
}

impl From<Task> for Arg {
    fn from(t: Task) -> Arg {
        Arg::Task(Box::new(t))
    }
}

/// An op and its arguments: one node of a graph.
///
/// ```
/// use dask_core::{op::fn_op, Arg, Key, Task};
/// let t = Task::new(fn_op(|a: i64, b: i64| a + b), vec![Arg::Key(Key::named("x")), Arg::value(1i64)]);
/// assert_eq!(t.dependencies(), vec![Key::named("x")]);
/// ```
#[derive(Clone)]
pub struct Task {
    /// The function to call.
    pub op: Arc<dyn Op>,
    /// Its arguments, resolved to values before the call.
    pub args: Vec<Arg>,
}

impl std::fmt::Debug for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task")
            .field("op", &self.op.name())
            .field("args", &self.args)
            .finish()
    }
}

impl Task {
    /// A task calling `op` on `args`.
    pub fn new(op: Arc<dyn Op>, args: Vec<Arg>) -> Task {
        Task { op, args }
    }

    /// A task whose value is the literal `value` (Dask's `DataNode`).
    pub fn data(value: Value) -> Task {
        Task::new(IDENTITY.clone(), vec![Arg::Value(value)])
    }

    /// A task whose value is another key's value (Dask's `Alias`).
    pub fn alias(target: Key) -> Task {
        Task::new(IDENTITY.clone(), vec![Arg::Key(target)])
    }

    /// The literal value if this is a [`Task::data`] task.
    pub fn as_data(&self) -> Option<&Value> {
        match self.args.as_slice() {
            [Arg::Value(v)] if self.op.name() == "identity" => Some(v),
            _ => None,
        }
    }

    /// Calls `f` on every key the task reads, in argument order (repeats included).
    pub fn for_each_key<'a>(&'a self, f: &mut impl FnMut(&'a Key)) {
        self.args.iter().for_each(|a| a.for_each_key(f));
    }

    /// The distinct keys this task depends on, in order of first appearance.
    pub fn dependencies(&self) -> Vec<Key> {
        let mut deps: Vec<Key> = Vec::new();
        self.for_each_key(&mut |k| {
            if !deps.contains(k) {
                deps.push(k.clone());
            }
        });
        deps
    }

    /// Replaces key arguments: `f` returns the new argument, or `None` to keep the key.
    pub fn map_keys(&mut self, mut f: impl FnMut(&Key) -> Option<Arg>) {
        self.args.iter_mut().for_each(|a| a.map_keys(&mut f));
    }

    /// Runs the task: `next` is called for each key argument in the order of
    /// [`Task::for_each_key`] and returns its value. Errors carry the failing op's name.
    fn call(&self, next: &mut impl FnMut(&Key) -> Value) -> Result<Value, (String, BoxError)> {
        let args = self
            .args
            .iter()
            .map(|a| a.resolve(next))
            .collect::<Result<Vec<Value>, _>>()?;
        self.op
            .call(&args)
            .map_err(|e| (self.op.name().to_owned(), e))
    }

    /// Runs the task as `key`, catching panics: every scheduler executes tasks
    /// through this. `next` supplies dependency values as in [`Task::for_each_key`].
    pub fn execute(&self, key: &Key, mut next: impl FnMut(&Key) -> Value) -> Result<Value> {
        match catch_unwind(AssertUnwindSafe(|| self.call(&mut next))) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err((op, source))) => Err(Error::task_failed(key, &op, source)),
            Err(payload) => Err(Error::task_failed(
                key,
                self.op.name(),
                Box::new(Panicked::from_payload(payload)),
            )),
        }
    }

    /// The nesting depth of inline tasks (1 for a task without nested tasks).
    pub fn depth(&self) -> usize {
        fn arg_depth(a: &Arg) -> usize {
            match a {
                Arg::Task(t) => t.depth(),
                Arg::List(items) => items.iter().map(arg_depth).max().unwrap_or(0),
                _ => 0,
            }
        }
        1 + self.args.iter().map(arg_depth).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::fn_op;

    #[test]
    fn nested_tasks_and_lists_resolve_in_order() {
        let sum = fn_op(|xs: Vec<Value>| {
            xs.iter()
                .map(|v| *v.downcast_ref::<i64>().unwrap())
                .sum::<i64>()
        });
        let neg = fn_op(|x: i64| -x);
        let t = Task::new(
            sum,
            vec![Arg::List(vec![
                Arg::Key(Key::named("a")),
                Arg::value(10i64),
                Arg::Task(Box::new(Task::new(neg, vec![Arg::Key(Key::named("b"))]))),
            ])],
        );
        let mut seen = Vec::new();
        let out = t
            .execute(&Key::named("t"), |k| {
                seen.push(k.clone());
                Value::new(if k.name() == "a" { 1i64 } else { 100i64 })
            })
            .unwrap();
        assert_eq!(*out.downcast_ref::<i64>().unwrap(), 1 + 10 - 100);
        assert_eq!(seen, vec![Key::named("a"), Key::named("b")]);
        assert_eq!(t.depth(), 2);
    }

    #[test]
    fn panics_become_task_failures() {
        let t = Task::new(fn_op(|| -> i64 { panic!("boom") }), vec![]);
        let err = t.execute(&Key::named("p"), |_| unreachable!()).unwrap_err();
        match err {
            Error::TaskFailed { key, message, .. } => {
                assert_eq!(key, Key::named("p"));
                assert!(message.contains("boom"), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
