//! [`Value`]: the type-erased result of a task.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use crate::{Error, Result};

/// A task's result: any `Send + Sync` value behind an `Arc`, with its type's name
/// kept for error messages.
///
/// Cloning is a reference-count increment. [`Value::downcast_ref`] and
/// [`Value::take`] give the typed value back, or [`Error::WrongType`] naming both
/// types.
///
/// ```
/// use dask_core::Value;
/// let v = Value::new(vec![1, 2, 3]);
/// assert_eq!(v.downcast_ref::<Vec<i32>>().unwrap(), &vec![1, 2, 3]);
/// assert!(v.downcast_ref::<String>().is_err());
/// ```
#[derive(Clone)]
pub struct Value {
    inner: Arc<dyn Any + Send + Sync>,
    type_name: &'static str,
    /// Makes the [`Shared`] view of the held type (boxed as `Any`).
    shared: fn(&Value) -> Option<Box<dyn Any + Send>>,
}

impl Value {
    /// Wraps a value.
    pub fn new<T: Any + Send + Sync>(value: T) -> Value {
        Value {
            inner: Arc::new(value),
            type_name: std::any::type_name::<T>(),
            shared: |v| {
                let arc = v.inner.clone().downcast::<T>().ok()?;
                Some(Box::new(Shared(arc)))
            },
        }
    }

    /// The value as an `A` that shares it: a [`Shared<T>`] when the value
    /// holds a `T` (no copy). `None` for any other `A`.
    pub fn as_shared<A: Any>(&self) -> Option<A> {
        (self.shared)(self)?.downcast::<A>().ok().map(|a| *a)
    }

    /// The name of the held type, as `std::any::type_name` gives it.
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// The `TypeId` of the held value's type.
    pub fn value_type_id(&self) -> std::any::TypeId {
        Any::type_id(&*self.inner)
    }

    /// Whether the value holds a `T`.
    pub fn is<T: Any>(&self) -> bool {
        self.inner.is::<T>()
    }

    /// A reference to the held `T`, or [`Error::WrongType`].
    pub fn downcast_ref<T: Any>(&self) -> Result<&T> {
        self.inner.downcast_ref::<T>().ok_or(Error::WrongType {
            expected: std::any::type_name::<T>(),
            found: self.type_name,
        })
    }

    /// The held `T`, moved out when this is the last reference, cloned otherwise.
    pub fn take<T: Any + Send + Sync + Clone>(self) -> Result<T> {
        let found = self.type_name;
        match self.inner.downcast::<T>() {
            Ok(arc) => Ok(Arc::try_unwrap(arc).unwrap_or_else(|arc| (*arc).clone())),
            Err(_) => Err(Error::WrongType {
                expected: std::any::type_name::<T>(),
                found,
            }),
        }
    }

    /// The held `T` as a shared `Arc`, without cloning the data.
    pub fn downcast_arc<T: Any + Send + Sync>(self) -> Result<Arc<T>> {
        let found = self.type_name;
        self.inner.downcast::<T>().map_err(|_| Error::WrongType {
            expected: std::any::type_name::<T>(),
            found,
        })
    }

    /// Whether two values are the same allocation.
    pub fn ptr_eq(&self, other: &Value) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// How many `Value`s share this allocation.
    pub fn ref_count(&self) -> usize {
        Arc::strong_count(&self.inner)
    }
}

/// A task argument read in place: a function taking `Shared<T>` gets the
/// input `T` without copying it (a plain `T` argument is a clone of the
/// input, which for a large array is a full copy).
///
/// It dereferences to `T`; cloning it is a reference-count increment. Pass a
/// `T` value or a future/delayed of `T` where a function takes `Shared<T>`.
///
/// ```
/// use dask_core::{op::fn_op, value::Shared, Value};
/// let len = fn_op(|v: Shared<Vec<u8>>| v.len());
/// let input = Value::new(vec![0u8; 1 << 20]);
/// let out = len.call(std::slice::from_ref(&input)).unwrap();
/// assert_eq!(*out.downcast_ref::<usize>().unwrap(), 1 << 20);
/// ```
pub struct Shared<T>(Arc<T>);

impl<T> Shared<T> {
    /// Wraps a value (for a direct call of a function taking `Shared<T>`).
    pub fn new(value: T) -> Shared<T> {
        Shared(Arc::new(value))
    }

    /// The shared `Arc`.
    pub fn into_arc(self) -> Arc<T> {
        self.0
    }
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(self.0.clone())
    }
}

impl<T> std::ops::Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: fmt::Debug> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Value<{}>", self.type_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_view_holds_the_same_allocation_and_only_for_the_held_type() {
        let v = Value::new(vec![1u32, 2, 3]);
        let shared = v.as_shared::<Shared<Vec<u32>>>().unwrap();
        assert_eq!(*shared, vec![1, 2, 3]);
        assert!(std::ptr::eq(
            &*shared,
            v.downcast_ref::<Vec<u32>>().unwrap()
        ));
        assert_eq!(v.ref_count(), 2);
        assert!(v.as_shared::<Shared<Vec<u64>>>().is_none());
        assert!(v.as_shared::<Vec<u32>>().is_none());
    }

    #[test]
    fn wrong_type_names_both_types() {
        let v = Value::new(3u8);
        let err = v.downcast_ref::<String>().unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("alloc::string::String"), "{msg}");
        assert!(msg.contains("u8"), "{msg}");
        assert!(matches!(v.take::<i64>(), Err(Error::WrongType { .. })));
    }

    #[test]
    fn take_moves_unique_and_clones_shared() {
        let v = Value::new(String::from("hi"));
        let w = v.clone();
        assert_eq!(w.take::<String>().unwrap(), "hi");
        assert_eq!(v.ref_count(), 1);
        assert_eq!(v.take::<String>().unwrap(), "hi");
    }
}
