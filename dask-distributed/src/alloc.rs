//! The C allocator of a worker process. glibc's malloc keeps freed memory
//! for reuse and raises its mmap threshold as large blocks come and go, so a
//! worker that spilled every value to disk can still show its old resident
//! memory, stay above its pause threshold and never run a task again (Dask
//! meets the same and sets `MALLOC_TRIM_THRESHOLD_` for its workers). A
//! worker process therefore fixes the mmap threshold, so blocks of 1 MiB and
//! more (array chunks, frames) go back to the system when freed, and asks
//! malloc to return free memory when it is above its spill threshold.
//! Elsewhere than glibc these are no-ops.

/// Blocks at least this large are mapped on their own and unmapped on free.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 1 << 20;

/// Tunes malloc for a process that runs one worker (not for a user's
/// process that embeds workers: its allocator stays as it is).
pub(crate) fn tune_for_worker_process() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: mallopt takes plain integers and only adjusts malloc's settings.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

/// Returns free heap memory to the system (glibc's `malloc_trim`).
pub(crate) fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: malloc_trim only walks malloc's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}
