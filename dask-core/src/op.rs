//! Ops: the functions tasks call, and the registry that names them by a stable tag.
//!
//! An [`Op`] is a trait object with a name and `call(&[Value]) -> Value`. Plain
//! functions and closures become ops through [`fn_op`] / [`try_fn_op`]; that is
//! enough for in-process schedulers. An op that must be rebuilt in another
//! process is registered with [`register_op!`](crate::register_op) under a stable
//! tag; [`build_op`] rebuilds it from the tag (and parameter bytes).
//!
//! Ops with parameters are structs: implement [`Op`] (`name` and `call`) for a
//! `Serialize + DeserializeOwned` type and register it with
//! [`register_op_type!`](crate::register_op_type). Its tag is the type's path and
//! its parameters are the struct itself, encoded with postcard; [`wire_form`]
//! gives both, and [`build_op`] rebuilds the struct on the other side.

use std::any::{type_name, Any, TypeId};
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, LazyLock, OnceLock};

use crate::{BoxError, Error, Result, Value};

/// A function a task calls on its resolved arguments.
///
/// `Any` is a supertrait so a registered struct op can be encoded from a
/// `&dyn Op` (see [`wire_form`]).
pub trait Op: Any + Send + Sync + 'static {
    /// A short name for diagnostics and key prefixes (`"inc"`, `"sum-chunk"`).
    fn name(&self) -> &str;

    /// Runs the op. Errors become [`Error::TaskFailed`] for the task's key; panics
    /// are caught by the scheduler and reported the same way.
    fn call(&self, args: &[Value]) -> Result<Value, BoxError>;

    /// The stable tag this op is registered under, if it can be rebuilt elsewhere.
    ///
    /// By default the tag a [`register_op_type!`](crate::register_op_type)
    /// registered for this type, if any.
    fn tag(&self) -> Option<&str> {
        registry().tag_of(TypeId::of::<Self>())
    }

    /// The parameters [`build_op`] needs next to the tag (empty for plain
    /// functions). Struct ops registered with
    /// [`register_op_type!`](crate::register_op_type) need not implement it:
    /// [`wire_form`] encodes the struct itself.
    fn params(&self) -> Vec<u8> {
        Vec::new()
    }
}

impl std::fmt::Debug for dyn Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Op({})", self.name())
    }
}

/// An op that returns its single argument: literal data and aliases.
#[derive(Debug, Clone, Copy)]
pub struct Identity;

impl Op for Identity {
    fn name(&self) -> &str {
        "identity"
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        match args {
            [v] => Ok(v.clone()),
            _ => Err(format!("identity takes 1 argument, got {}", args.len()).into()),
        }
    }
    fn tag(&self) -> Option<&str> {
        Some("dask_core::identity")
    }
}

pub(crate) static IDENTITY: LazyLock<Arc<dyn Op>> = LazyLock::new(|| Arc::new(Identity));

/// A plain function or closure used as an op; built by [`fn_op`] and [`try_fn_op`].
///
/// `M` is a marker naming the function's signature, so one `FnOp` type serves
/// every arity.
pub struct FnOp<F, M> {
    f: F,
    name: String,
    tag: Option<&'static str>,
    _marker: PhantomData<fn() -> M>,
}

impl<F: 'static, M> FnOp<F, M> {
    fn new(f: F) -> Self {
        FnOp {
            f,
            name: op_name::<F>(),
            tag: registry().tag_of(TypeId::of::<F>()),
            _marker: PhantomData,
        }
    }
}

/// Marker for fallible functions (`Fn(..) -> Result<R, E>`), see [`try_fn_op`].
pub struct Fallible<M, E>(PhantomData<fn() -> (M, E)>);

/// A function that can become an op; `M` is its signature marker.
pub trait IntoOp<M>: Send + Sync + 'static {
    /// The op's arguments, as a tuple type.
    type Args;
    /// What the function returns (the task's value).
    type Output: Any + Send + Sync;
    /// Wraps the function as an op.
    fn into_op(self) -> Arc<dyn Op>;
}

/// Wraps a plain function or closure `Fn(A, B, ..) -> R` (up to 6 arguments) as an op.
///
/// Arguments are downcast from [`Value`]s and cloned, except those of type
/// [`Shared<T>`](crate::value::Shared), which share the input (no copy); a
/// value of the wrong type is a task failure naming the argument and both
/// types.
///
/// ```
/// use dask_core::{op::fn_op, Value};
/// let add = fn_op(|a: i64, b: i64| a + b);
/// let out = add.call(&[Value::new(2i64), Value::new(3i64)]).unwrap();
/// assert_eq!(*out.downcast_ref::<i64>().unwrap(), 5);
/// ```
pub fn fn_op<F: IntoOp<M>, M>(f: F) -> Arc<dyn Op> {
    f.into_op()
}

/// Wraps a fallible function `Fn(A, ..) -> Result<R, E>` as an op whose errors
/// become task failures with `E` as their source.
pub fn try_fn_op<F, M, E>(f: F) -> Arc<dyn Op>
where
    F: IntoOp<Fallible<M, E>>,
{
    f.into_op()
}

/// Argument `i` as an `A`: a clone of the input, or for `A` =
/// [`Shared<T>`](crate::value::Shared) the input itself, shared.
fn arg<A: Any + Clone>(args: &[Value], i: usize) -> Result<A, BoxError> {
    let v = &args[i];
    match v.downcast_ref::<A>() {
        Ok(a) => Ok(a.clone()),
        Err(e) => v
            .as_shared::<A>()
            .ok_or_else(|| -> BoxError { format!("argument {i}: {e}").into() }),
    }
}

fn check_arity(name: &str, expected: usize, found: usize) -> Result<(), BoxError> {
    if expected == found {
        Ok(())
    } else {
        Err(format!("`{name}` takes {expected} arguments, the task gave {found}").into())
    }
}

macro_rules! fn_ops {
    ($( $n:literal => ($($a:ident $i:tt),*) );* $(;)?) => {$(
        impl<F, R, $($a,)*> Op for FnOp<F, fn($($a,)*) -> R>
        where
            F: Fn($($a,)*) -> R + Send + Sync + 'static,
            R: Any + Send + Sync,
            $($a: Any + Send + Sync + Clone,)*
        {
            fn name(&self) -> &str {
                &self.name
            }
            #[allow(unused_variables)]
            fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
                check_arity(&self.name, $n, args.len())?;
                Ok(Value::new((self.f)($(arg::<$a>(args, $i)?,)*)))
            }
            fn tag(&self) -> Option<&str> {
                self.tag
            }
        }

        impl<F, R, $($a,)*> IntoOp<fn($($a,)*) -> R> for F
        where
            F: Fn($($a,)*) -> R + Send + Sync + 'static,
            R: Any + Send + Sync,
            $($a: Any + Send + Sync + Clone,)*
        {
            type Args = ($($a,)*);
            type Output = R;
            fn into_op(self) -> Arc<dyn Op> {
                Arc::new(FnOp::<F, fn($($a,)*) -> R>::new(self))
            }
        }

        impl<F, R, E, $($a,)*> Op for FnOp<F, Fallible<fn($($a,)*) -> R, E>>
        where
            F: Fn($($a,)*) -> Result<R, E> + Send + Sync + 'static,
            R: Any + Send + Sync,
            E: Into<BoxError> + 'static,
            $($a: Any + Send + Sync + Clone,)*
        {
            fn name(&self) -> &str {
                &self.name
            }
            #[allow(unused_variables)]
            fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
                check_arity(&self.name, $n, args.len())?;
                (self.f)($(arg::<$a>(args, $i)?,)*).map(Value::new).map_err(Into::into)
            }
            fn tag(&self) -> Option<&str> {
                self.tag
            }
        }

        impl<F, R, E, $($a,)*> IntoOp<Fallible<fn($($a,)*) -> R, E>> for F
        where
            F: Fn($($a,)*) -> Result<R, E> + Send + Sync + 'static,
            R: Any + Send + Sync,
            E: Into<BoxError> + 'static,
            $($a: Any + Send + Sync + Clone,)*
        {
            type Args = ($($a,)*);
            type Output = R;
            fn into_op(self) -> Arc<dyn Op> {
                Arc::new(FnOp::<F, Fallible<fn($($a,)*) -> R, E>>::new(self))
            }
        }
    )*};
}

fn_ops! {
    0 => ();
    1 => (A0 0);
    2 => (A0 0, A1 1);
    3 => (A0 0, A1 1, A2 2);
    4 => (A0 0, A1 1, A2 2, A3 3);
    5 => (A0 0, A1 1, A2 2, A3 3, A4 4);
    6 => (A0 0, A1 1, A2 2, A3 3, A4 4, A5 5);
}

/// A readable op name from a function's type: `my_crate::inc` gives `inc`, a
/// closure in `main` gives `main::{{closure}}`.
pub fn op_name<F>() -> String {
    let full = std::any::type_name::<F>();
    if full.starts_with("fn(") || full.starts_with("unsafe fn(") || full.starts_with("extern") {
        return "fn-pointer".to_owned();
    }
    let base = full.split('<').next().unwrap_or(full);
    let mut parts = base.rsplit("::");
    let last = parts.next().unwrap_or(base);
    if last.starts_with('{') {
        match parts.next() {
            Some(parent) => format!("{parent}::{last}"),
            None => last.to_owned(),
        }
    } else {
        last.to_owned()
    }
}

/// Rebuilds a registered op from its parameter bytes.
pub type BuildOp = fn(&[u8]) -> Result<Arc<dyn Op>, BoxError>;

/// Encodes a registered struct op (given as `&dyn Any`) to its parameter bytes.
pub type EncodeOp = fn(&dyn Any) -> Result<Vec<u8>, BoxError>;

/// One registered op: how a process rebuilds it from its tag.
///
/// Created by [`register_op!`](crate::register_op); collected at link time.
pub struct OpRegistration {
    /// The stable tag (by convention the op's path: `my_crate::inc`).
    pub tag: fn() -> &'static str,
    /// The `TypeId` of the function or op type, so [`fn_op`] finds its tag.
    pub type_id: fn() -> TypeId,
    /// Rebuilds the op from its parameter bytes.
    pub build: BuildOp,
    /// For struct ops: encodes the op's parameters (`None` for functions,
    /// whose parameters come from [`Op::params`]).
    pub encode: Option<EncodeOp>,
}

inventory::collect!(OpRegistration);

/// The `TypeId` of a value's type; used by [`register_op!`](crate::register_op).
pub fn type_id_of_val<T: 'static>(_: &T) -> TypeId {
    TypeId::of::<T>()
}

/// All ops registered in this binary, by tag and by type.
pub struct Registry {
    by_tag: HashMap<String, &'static OpRegistration>,
    tag_by_type: HashMap<TypeId, &'static str>,
    encode_by_type: HashMap<TypeId, EncodeOp>,
    duplicates: Vec<String>,
}

impl Registry {
    fn collect() -> Registry {
        let mut registry = Registry {
            by_tag: HashMap::new(),
            tag_by_type: HashMap::new(),
            encode_by_type: HashMap::new(),
            duplicates: Vec::new(),
        };
        for reg in inventory::iter::<OpRegistration> {
            let raw = (reg.tag)();
            let tag: &'static str = if raw.contains(' ') {
                Box::leak(raw.replace(' ', "").into_boxed_str())
            } else {
                raw
            };
            if registry.by_tag.insert(tag.to_owned(), reg).is_some() {
                registry.duplicates.push(tag.to_owned());
            }
            registry.tag_by_type.insert((reg.type_id)(), tag);
            if let Some(encode) = reg.encode {
                registry.encode_by_type.insert((reg.type_id)(), encode);
            }
        }
        registry
    }

    /// The tag registered for a function or op type.
    pub fn tag_of(&self, type_id: TypeId) -> Option<&'static str> {
        self.tag_by_type.get(&type_id).copied()
    }

    /// Every registered tag, sorted.
    pub fn tags(&self) -> Vec<&str> {
        let mut tags: Vec<&str> = self.by_tag.keys().map(String::as_str).collect();
        tags.sort_unstable();
        tags
    }

    /// Rebuilds the op registered under `tag`.
    pub fn build(&self, tag: &str, params: &[u8]) -> Result<Arc<dyn Op>> {
        if self.duplicates.iter().any(|d| d == tag) {
            return Err(Error::DuplicateOp {
                tag: tag.to_owned(),
            });
        }
        let reg = self.by_tag.get(tag).ok_or_else(|| Error::UnknownOp {
            tag: tag.to_owned(),
        })?;
        (reg.build)(params).map_err(|source| Error::Codec {
            tag: tag.to_owned(),
            source,
        })
    }
}

/// The registry of this binary's ops (collected once, on first use).
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::collect)
}

/// Rebuilds a registered op from its tag and parameters; see [`Op::tag`].
pub fn build_op(tag: &str, params: &[u8]) -> Result<Arc<dyn Op>> {
    if tag == "dask_core::identity" {
        return Ok(IDENTITY.clone());
    }
    registry().build(tag, params)
}

/// The tag and parameter bytes that rebuild `op` in another process (with
/// [`build_op`]), or `None` if it is not registered (closures, unregistered
/// functions and op types).
///
/// Errors: [`Error::Codec`] if a struct op's parameters fail to encode.
pub fn wire_form(op: &dyn Op) -> Result<Option<(&str, Vec<u8>)>> {
    let Some(tag) = op.tag() else {
        return Ok(None);
    };
    let any: &dyn Any = op;
    let params = match registry().encode_by_type.get(&any.type_id()) {
        Some(encode) => encode(any).map_err(|source| Error::Codec {
            tag: tag.to_owned(),
            source,
        })?,
        None => op.params(),
    };
    Ok(Some((tag, params)))
}

/// Rebuilds a struct op from postcard bytes; used by
/// [`register_op_type!`](crate::register_op_type).
pub fn postcard_build<T>(params: &[u8]) -> Result<Arc<dyn Op>, BoxError>
where
    T: Op + serde::de::DeserializeOwned,
{
    let op: T = postcard::from_bytes(params)
        .map_err(|e| format!("parameters of op `{}`: {e}", type_name::<T>()))?;
    Ok(Arc::new(op))
}

/// Encodes a struct op with postcard; used by
/// [`register_op_type!`](crate::register_op_type).
pub fn postcard_params<T>(op: &dyn Any) -> Result<Vec<u8>, BoxError>
where
    T: Op + serde::Serialize,
{
    let op = op.downcast_ref::<T>().ok_or_else(|| -> BoxError {
        format!("op is not a `{}` (bug in dask-rs)", type_name::<T>()).into()
    })?;
    Ok(postcard::to_allocvec(op)?)
}

/// Registers an op type with parameters (a struct implementing [`Op`] and
/// serde's `Serialize + DeserializeOwned`) under its type path, so a process
/// that links it rebuilds the op from its tag and the struct's postcard bytes.
///
/// Generic op types are registered once per instantiation
/// (`register_op_type!(Scale<f32>)`). The type's [`Op::tag`] and
/// [`wire_form`] then need no code in the impl.
///
/// ```
/// use dask_core::{op::{build_op, wire_form}, BoxError, Op, Value};
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Scale { factor: i64 }
///
/// impl Op for Scale {
///     fn name(&self) -> &str { "scale" }
///     fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
///         Ok(Value::new(args[0].downcast_ref::<i64>()? * self.factor))
///     }
/// }
/// dask_core::register_op_type!(Scale);
///
/// let op = Scale { factor: 3 };
/// let (tag, params) = wire_form(&op).unwrap().expect("registered");
/// assert!(tag.ends_with("Scale"));
/// let rebuilt = build_op(tag, &params).unwrap();
/// let out = rebuilt.call(&[Value::new(5i64)]).unwrap();
/// assert_eq!(*out.downcast_ref::<i64>().unwrap(), 15);
/// ```
#[macro_export]
macro_rules! register_op_type {
    ($t:ty) => {
        $crate::__private::inventory::submit! {
            $crate::op::OpRegistration {
                tag: || ::std::any::type_name::<$t>(),
                type_id: || ::std::any::TypeId::of::<$t>(),
                build: $crate::op::postcard_build::<$t>,
                encode: ::std::option::Option::Some($crate::op::postcard_params::<$t>),
            }
        }
    };
}

/// Registers a plain function as an op under the tag `module::path::name`, so a
/// process that links it can rebuild the op from its tag (distributed workers).
///
/// ```
/// fn inc(x: i64) -> i64 { x + 1 }
/// dask_core::register_op!(inc);
///
/// let op = dask_core::op::fn_op(inc);
/// let tag = op.tag().expect("registered");
/// assert!(tag.ends_with("::inc"));
/// let rebuilt = dask_core::op::build_op(tag, &[]).unwrap();
/// let out = rebuilt.call(&[dask_core::Value::new(9i64)]).unwrap();
/// assert_eq!(*out.downcast_ref::<i64>().unwrap(), 10);
/// ```
///
/// Fallible functions (`-> Result<R, E>`, used with
/// [`try_delayed`](crate::try_delayed)) register with `register_op!(try path)`.
#[macro_export]
macro_rules! register_op {
    (try $f:path) => {
        $crate::__private::inventory::submit! {
            $crate::op::OpRegistration {
                tag: || concat!(module_path!(), "::", stringify!($f)),
                type_id: || $crate::op::type_id_of_val(&$f),
                build: |_params| Ok($crate::op::try_fn_op($f)),
                encode: None,
            }
        }
    };
    ($f:path) => {
        $crate::__private::inventory::submit! {
            $crate::op::OpRegistration {
                tag: || concat!(module_path!(), "::", stringify!($f)),
                type_id: || $crate::op::type_id_of_val(&$f),
                build: |_params| Ok($crate::op::fn_op($f)),
                encode: None,
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_arguments_read_the_input_in_place_and_name_a_wrong_type() {
        let address = fn_op(|v: crate::Shared<Vec<u64>>, k: u64| v.as_ptr() as u64 + k);
        let input = Value::new(vec![7u64; 1000]);
        let held = input.downcast_ref::<Vec<u64>>().unwrap().as_ptr() as u64;
        let out = address.call(&[input.clone(), Value::new(0u64)]).unwrap();
        assert_eq!(*out.downcast_ref::<u64>().unwrap(), held);
        // A `Shared` value passed as is works too; a wrong type is a task error.
        let direct = Value::new(crate::Shared::new(vec![1u64]));
        assert!(address.call(&[direct, Value::new(0u64)]).is_ok());
        let err = address
            .call(&[Value::new(vec![1u32]), Value::new(0u64)])
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("argument 0") && msg.contains("Vec<u32>"),
            "{msg}"
        );
    }

    fn double(x: i64) -> i64 {
        x * 2
    }

    #[test]
    fn names_of_functions_and_closures() {
        assert_eq!(fn_op(double).name(), "double");
        let op = fn_op(|x: i64| x);
        assert!(op.name().ends_with("{{closure}}"), "{}", op.name());
    }

    #[test]
    fn wrong_argument_type_and_arity_are_errors() {
        let op = fn_op(double);
        let err = op.call(&[Value::new("no")]).unwrap_err().to_string();
        assert!(err.contains("argument 0") && err.contains("i64"), "{err}");
        let err = op.call(&[]).unwrap_err().to_string();
        assert!(err.contains("takes 1 arguments"), "{err}");
    }

    #[test]
    fn fallible_ops_report_their_error() {
        let op = try_fn_op(|x: i64| if x > 0 { Ok(x) } else { Err("not positive") });
        assert!(op.call(&[Value::new(1i64)]).is_ok());
        assert_eq!(
            op.call(&[Value::new(-1i64)]).unwrap_err().to_string(),
            "not positive"
        );
    }

    /// An op with parameters, generic over the element type.
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq, Clone)]
    struct AddConst<T> {
        add: T,
        label: String,
    }

    impl<T> Op for AddConst<T>
    where
        T: Copy + std::ops::Add<Output = T> + Send + Sync + 'static,
    {
        fn name(&self) -> &str {
            &self.label
        }
        fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
            Ok(Value::new(*args[0].downcast_ref::<T>()? + self.add))
        }
    }
    crate::register_op_type!(AddConst<i64>);
    crate::register_op_type!(AddConst<f64>);

    /// Serializable, but never registered.
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Unregistered;
    impl Op for Unregistered {
        fn name(&self) -> &str {
            "unregistered"
        }
        fn call(&self, _: &[Value]) -> Result<Value, BoxError> {
            Ok(Value::new(()))
        }
    }

    #[test]
    fn struct_ops_round_trip_with_their_parameters() {
        let ints = AddConst {
            add: 7i64,
            label: "add7".into(),
        };
        let floats = AddConst {
            add: 0.5f64,
            label: "half".into(),
        };
        let (tag_i, params_i) = wire_form(&ints).unwrap().expect("registered");
        let (tag_f, params_f) = wire_form(&floats).unwrap().expect("registered");
        assert_eq!(tag_i, std::any::type_name::<AddConst<i64>>());
        assert_ne!(tag_i, tag_f, "each instantiation has its own tag");
        assert_eq!(params_i, postcard::to_allocvec(&ints).unwrap());
        let rebuilt = build_op(tag_i, &params_i).unwrap();
        assert_eq!(rebuilt.name(), "add7");
        assert_eq!(rebuilt.tag(), Some(tag_i));
        let out = rebuilt.call(&[Value::new(35i64)]).unwrap();
        assert_eq!(*out.downcast_ref::<i64>().unwrap(), 35 + ints.add);
        let out = build_op(tag_f, &params_f)
            .unwrap()
            .call(&[Value::new(1.0f64)])
            .unwrap();
        assert_eq!(*out.downcast_ref::<f64>().unwrap(), 1.0 + floats.add);
        // As a trait object (what a task holds), the same wire form.
        let shared: Arc<dyn Op> = Arc::new(ints.clone());
        assert_eq!(
            wire_form(&*shared).unwrap(),
            Some((tag_i, params_i.clone()))
        );
    }

    #[test]
    fn unregistered_ops_have_no_wire_form_and_bad_params_are_typed_errors() {
        assert_eq!(Unregistered.tag(), None);
        assert!(wire_form(&Unregistered).unwrap().is_none());
        assert!(wire_form(&*fn_op(|x: i64| x)).unwrap().is_none());
        let tag = std::any::type_name::<AddConst<i64>>();
        let err = build_op(tag, &[0xff, 0xff]).unwrap_err();
        assert!(matches!(err, Error::Codec { .. }), "{err}");
        assert!(err.to_string().contains("AddConst"), "{err}");
    }

    #[test]
    fn unknown_tag_is_a_typed_error() {
        assert!(matches!(
            build_op("no::such::op", &[]),
            Err(Error::UnknownOp { .. })
        ));
        assert!(fn_op(double).tag().is_none());
    }
}
