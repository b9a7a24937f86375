//! Local diagnostics for the sync and threaded schedulers, like
//! `dask.diagnostics`: a [`ProgressBar`], a task [`Profiler`] and a
//! [`ResourceProfiler`], each a [`Callback`](crate::callbacks::Callback)
//! that is active while its guard lives.
//!
//! ```no_run
//! use dask_core::diagnostics::{Profiler, ProgressBar, ResourceProfiler};
//! # fn run() -> dask_core::Result<()> {
//! let _bar = ProgressBar::new().register();
//! let prof = Profiler::new();
//! let res = ResourceProfiler::new();
//! let (_p, _r) = (prof.register(), res.register());
//! // ... compute() collections here ...
//! dask_core::diagnostics::write_report("profile.html", &prof, Some(&res))?;
//! # Ok(()) }
//! ```

mod profile;
mod progress;
mod resource;
mod timeline;

pub use indicatif;
pub use profile::{Profiler, TaskRecord};
pub use progress::ProgressBar;
pub use resource::{ResourceProfiler, ResourceSample};
pub use timeline::{
    escape_html, render_lanes_svg, render_resources_svg, render_tasks_svg, write_report,
};
