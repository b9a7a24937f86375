//! [`Delayed`]: lazy calls of plain functions and closures, building a graph.

use std::any::Any;
use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::op::{Fallible, IntoOp, Op};
use crate::{
    tokenize::unique_token, Arg, Collection, Graph, HighLevelGraph, Key, Result, Task, Value,
};

/// A lazy value of type `T`: the result of a delayed call, not computed yet.
///
/// Build with [`delayed`] (or [`Delayed::value`], [`Delayed::from_graph`]);
/// compute with [`Collection::compute`] or together with others via
/// [`compute`](crate::compute).
///
/// ```
/// use dask_core::{delayed, Collection};
/// use dask_sync_scheduler::SyncScheduler;
///
/// fn inc(x: i64) -> i64 { x + 1 }
/// fn add(a: i64, b: i64) -> i64 { a + b }
///
/// let a = delayed(inc).call((1,));
/// let b = delayed(inc).call((2,));
/// let total = delayed(add).call((&a, &b));
/// assert_eq!(total.compute_with(&SyncScheduler::new()).unwrap(), 5);
/// ```
pub struct Delayed<T> {
    node: Arc<Node>,
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for Delayed<T> {
    fn clone(&self) -> Self {
        Delayed {
            node: self.node.clone(),
            _type: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Delayed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Delayed({})", self.node.key)
    }
}

struct Node {
    key: Key,
    kind: NodeKind,
}

enum NodeKind {
    /// A delayed call: its task and the nodes its arguments come from.
    Call { task: Task, deps: Vec<Arc<Node>> },
    /// A key of an existing graph.
    Graph(HighLevelGraph),
}

impl Drop for Node {
    // Long chains would overflow the stack with the recursive default drop.
    fn drop(&mut self) {
        let NodeKind::Call { deps, .. } = &mut self.kind else {
            return;
        };
        let mut stack = std::mem::take(deps);
        while let Some(node) = stack.pop() {
            if let Some(mut node) = Arc::into_inner(node) {
                if let NodeKind::Call { deps, .. } = &mut node.kind {
                    stack.append(deps);
                }
            }
        }
    }
}

impl<T: Any + Send + Sync> Delayed<T> {
    /// A delayed literal (`dask.delayed(obj)`).
    pub fn value(value: T) -> Delayed<T> {
        Delayed::from_node(Node {
            key: Key::named(format!("value-{}", unique_token())),
            kind: NodeKind::Call {
                task: Task::data(Value::new(value)),
                deps: Vec::new(),
            },
        })
    }

    /// The value of `key` in an existing graph (`Delayed(key, dsk)` in Dask): how a
    /// custom task graph becomes a collection. The key's task must produce a `T`.
    pub fn from_graph(key: Key, graph: impl Into<HighLevelGraph>) -> Delayed<T> {
        Delayed::from_node(Node {
            key,
            kind: NodeKind::Graph(graph.into()),
        })
    }

    fn from_node(node: Node) -> Delayed<T> {
        Delayed {
            node: Arc::new(node),
            _type: PhantomData,
        }
    }

    /// The key of this value's task.
    pub fn key(&self) -> &Key {
        &self.node.key
    }

    /// A delayed call of `f` on this value.
    pub fn map<F, R>(&self, f: F) -> Delayed<R>
    where
        F: Fn(T) -> R + Send + Sync + 'static,
        T: Clone,
        R: Any + Send + Sync,
    {
        delayed(f).call((self,))
    }
}

impl<T: Any + Send + Sync + Clone> Collection for Delayed<T> {
    type Output = T;

    fn graph(&self) -> HighLevelGraph {
        let mut graph = Graph::new();
        let mut inputs: Vec<HighLevelGraph> = Vec::new();
        let mut seen: HashSet<*const Node> = HashSet::new();
        let mut stack: Vec<&Arc<Node>> = vec![&self.node];
        while let Some(node) = stack.pop() {
            if !seen.insert(Arc::as_ptr(node)) {
                continue;
            }
            match &node.kind {
                NodeKind::Call { task, deps } => {
                    graph.insert(node.key.clone(), task.clone());
                    stack.extend(deps.iter());
                }
                NodeKind::Graph(hlg) => inputs.push(hlg.clone()),
            }
        }
        let inputs: Vec<&HighLevelGraph> = inputs.iter().collect();
        HighLevelGraph::from_layer(format!("delayed-{}", self.node.key.name()), graph, &inputs)
    }

    fn keys(&self) -> Vec<Key> {
        vec![self.node.key.clone()]
    }

    fn finalize(&self, values: Vec<Value>) -> Result<T> {
        let value = values
            .into_iter()
            .next()
            .ok_or(crate::Error::WrongNumberOfValues {
                expected: 1,
                found: 0,
            })?;
        value.take::<T>()
    }

    fn rebuild(&self, graph: HighLevelGraph) -> Self {
        Delayed::from_graph(self.node.key.clone(), graph)
    }
}

/// A function ready to be called lazily; made by [`delayed`] or [`try_delayed`].
///
/// `Args` is the tuple of argument types, `R` the return type.
pub struct DelayedFn<Args, R> {
    op: Arc<dyn Op>,
    prefix: String,
    _sig: PhantomData<fn(Args) -> R>,
}

impl<Args, R> Clone for DelayedFn<Args, R> {
    fn clone(&self) -> Self {
        DelayedFn {
            op: self.op.clone(),
            prefix: self.prefix.clone(),
            _sig: PhantomData,
        }
    }
}

/// Wraps a plain function or closure (up to 6 arguments) so calls build tasks
/// instead of running: `delayed(f).call((a, b))`, like `dask.delayed(f)(a, b)`.
///
/// Each argument may be a plain value, a `Delayed` or a `&Delayed` of the
/// parameter's type. Every call is a new task (Dask's default `pure=False`).
pub fn delayed<F, M>(f: F) -> DelayedFn<F::Args, F::Output>
where
    F: IntoOp<M>,
{
    let op = f.into_op();
    DelayedFn {
        prefix: key_prefix(op.name()),
        op,
        _sig: PhantomData,
    }
}

/// [`delayed`] for fallible functions `Fn(..) -> Result<R, E>`: an `Err` fails the
/// task with `E` as the source of [`Error::TaskFailed`](crate::Error::TaskFailed),
/// and the value is the `R`.
pub fn try_delayed<F, M, E>(f: F) -> DelayedFn<F::Args, F::Output>
where
    F: IntoOp<Fallible<M, E>>,
{
    delayed::<F, Fallible<M, E>>(f)
}

/// The prefix of keys made for calls of an op: its name, or `closure` for
/// closures (whose names end in `{{closure}}`), like Dask's `lambda`.
pub fn key_prefix(op_name: &str) -> String {
    if op_name.ends_with('}') {
        "closure".to_owned()
    } else {
        op_name.to_owned()
    }
}

impl<Args, R: Any + Send + Sync> DelayedFn<Args, R> {
    /// A lazy call with `args` (a tuple: `(x,)`, `(x, y)`, ...).
    pub fn call<X: DelayedArgs<Args>>(&self, args: X) -> Delayed<R> {
        let mut deps = Vec::new();
        let args = args
            .into_args()
            .into_iter()
            .map(|DelayedArg { arg, nodes }| {
                deps.extend(nodes);
                arg
            })
            .collect();
        Delayed::from_node(Node {
            key: Key::named(format!("{}-{}", self.prefix, unique_token())),
            kind: NodeKind::Call {
                task: Task::new(self.op.clone(), args),
                deps,
            },
        })
    }
}

/// One argument of a delayed call, as a graph argument.
pub struct DelayedArg {
    arg: Arg,
    nodes: Vec<Arc<Node>>,
}

/// A value usable as an argument of type `T` in a delayed call: `T` itself,
/// `Delayed<T>` or `&Delayed<T>`; for an argument of type `Vec<T>`, also a
/// list of delayed values (`Vec<Delayed<T>>`, `&[Delayed<T>]`), as in Dask's
/// `delayed(sum)([a, b, c])`.
pub trait IntoArg<T> {
    /// Converts to a graph argument.
    fn into_arg(self) -> DelayedArg;
}

impl<T: Any + Send + Sync> IntoArg<T> for T {
    fn into_arg(self) -> DelayedArg {
        DelayedArg {
            arg: Arg::Value(Value::new(self)),
            nodes: Vec::new(),
        }
    }
}

impl<T> IntoArg<T> for Delayed<T> {
    fn into_arg(self) -> DelayedArg {
        DelayedArg {
            arg: Arg::Key(self.node.key.clone()),
            nodes: vec![self.node],
        }
    }
}

impl<T> IntoArg<T> for &Delayed<T> {
    fn into_arg(self) -> DelayedArg {
        DelayedArg {
            arg: Arg::Key(self.node.key.clone()),
            nodes: vec![self.node.clone()],
        }
    }
}

/// A delayed `T` for a parameter of type [`Shared<T>`](crate::value::Shared):
/// the task reads the value in place, without a copy.
impl<T> IntoArg<crate::value::Shared<T>> for &Delayed<T> {
    fn into_arg(self) -> DelayedArg {
        DelayedArg {
            arg: Arg::Key(self.node.key.clone()),
            nodes: vec![self.node.clone()],
        }
    }
}

/// Gathers a list argument's values into the `Vec<T>` the function takes.
struct CollectList<T>(PhantomData<fn() -> T>);

impl<T: Any + Clone + Send + Sync> Op for CollectList<T> {
    fn name(&self) -> &str {
        "list"
    }
    fn call(&self, args: &[Value]) -> std::result::Result<Value, crate::BoxError> {
        let items = args
            .iter()
            .map(|v| v.downcast_ref::<T>().cloned())
            .collect::<Result<Vec<T>>>()?;
        Ok(Value::new(items))
    }
}

fn list_arg<'a, T: Any + Clone + Send + Sync>(
    items: impl Iterator<Item = &'a Delayed<T>>,
) -> DelayedArg {
    let nodes: Vec<Arc<Node>> = items.map(|d| d.node.clone()).collect();
    let args = nodes.iter().map(|n| Arg::Key(n.key.clone())).collect();
    let task = Task::new(Arc::new(CollectList::<T>(PhantomData)), args);
    DelayedArg {
        arg: Arg::Task(Box::new(task)),
        nodes,
    }
}

impl<T: Any + Clone + Send + Sync> IntoArg<Vec<T>> for Vec<Delayed<T>> {
    fn into_arg(self) -> DelayedArg {
        list_arg(self.iter())
    }
}

impl<T: Any + Clone + Send + Sync> IntoArg<Vec<T>> for &Vec<Delayed<T>> {
    fn into_arg(self) -> DelayedArg {
        list_arg(self.iter())
    }
}

impl<T: Any + Clone + Send + Sync> IntoArg<Vec<T>> for &[Delayed<T>] {
    fn into_arg(self) -> DelayedArg {
        list_arg(self.iter())
    }
}

/// A tuple of [`IntoArg`]s matching a function's argument tuple `Args`.
pub trait DelayedArgs<Args> {
    /// The arguments, in order.
    fn into_args(self) -> Vec<DelayedArg>;
}

macro_rules! delayed_args {
    ($(($($n:tt $a:ident $x:ident),*))*) => {$(
        impl<$($a, $x: IntoArg<$a>,)*> DelayedArgs<($($a,)*)> for ($($x,)*) {
            #[allow(clippy::unused_unit)]
            fn into_args(self) -> Vec<DelayedArg> {
                vec![$(self.$n.into_arg()),*]
            }
        }
    )*};
}
delayed_args! {
    ()
    (0 A0 X0)
    (0 A0 X0, 1 A1 X1)
    (0 A0 X0, 1 A1 X1, 2 A2 X2)
    (0 A0 X0, 1 A1 X1, 2 A2 X2, 3 A3 X3)
    (0 A0 X0, 1 A1 X1, 2 A2 X2, 3 A3 X3, 4 A4 X4)
    (0 A0 X0, 1 A1 X1, 2 A2 X2, 3 A3 X3, 4 A4 X4, 5 A5 X5)
}
