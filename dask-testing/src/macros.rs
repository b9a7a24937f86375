//! The [`scheduler_test!`](crate::scheduler_test) macro.

/// Writes a test once and runs it on every scheduler, like tokio's
/// `tests/rt_common.rs`.
///
/// Each `fn name(s: &dyn Scheduler) { body }` becomes a `#[test]` in each of
/// the modules `sync`, `threaded_1`, `threaded_4` and `distributed` (see
/// [`Flavor::ALL`](crate::Flavor::ALL)); the modules `use super::*`, so the
/// body sees the file's imports. Every test gets a fresh scheduler and runs
/// under a watchdog ([`within`](crate::within)). Attributes (doc comments,
/// `ignore`, `should_panic`) are kept. Invoke it once per module.
///
/// ```
/// use dask_core::{delayed, Collection, Scheduler};
///
/// dask_testing::scheduler_test! {
///     /// Squares on every scheduler.
///     fn squares(s: &dyn Scheduler) {
///         let x = delayed(|a: i64| a * a).call((7,));
///         assert_eq!(x.compute_with(s).unwrap(), 49);
///     }
/// }
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! scheduler_test {
    ($($items:tt)*) => {
        $crate::__scheduler_test_module! { sync, $crate::Flavor::Sync, $($items)* }
        $crate::__scheduler_test_module! { threaded_1, $crate::Flavor::Threaded(1), $($items)* }
        $crate::__scheduler_test_module! { threaded_4, $crate::Flavor::Threaded(4), $($items)* }
        $crate::__scheduler_test_module! { distributed, $crate::Flavor::Distributed, $($items)* }
    };
}

/// One module of [`scheduler_test!`](crate::scheduler_test); not public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __scheduler_test_module {
    (
        $module:ident, $flavor:expr,
        $( $(#[$attr:meta])* fn $name:ident ($s:ident : $t:ty) $body:block )*
    ) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                $(#[$attr])*
                fn $name() {
                    $crate::run_scheduler_test($flavor, |$s: $t| $body);
                }
            )*
        }
    };
}
