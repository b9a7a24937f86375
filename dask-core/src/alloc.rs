//! [`HugePageAlloc`]: the system allocator, asking Linux for transparent huge
//! pages on large blocks, as NumPy does for its arrays.
//!
//! A fresh 8 MiB chunk of an array costs 2048 page faults with 4 KiB pages
//! and 4 with 2 MiB pages. Linux hands out huge pages only to memory marked
//! `MADV_HUGEPAGE` when transparent huge pages are in `madvise` mode (the
//! common default; `/sys/kernel/mm/transparent_hugepage/enabled`). A library
//! must not pick the process's allocator, so this is opt-in for binaries:
//!
//! ```
//! #[global_allocator]
//! static ALLOC: dask_core::alloc::HugePageAlloc = dask_core::alloc::HugePageAlloc;
//! # fn main() { let v = vec![0u8; 8 << 20]; assert_eq!(v.len(), 8 << 20); }
//! ```
//!
//! The `dask` binary and `dask-bench` use it. Elsewhere than Linux it is the
//! plain system allocator.

use std::alloc::{GlobalAlloc, Layout, System};

/// Blocks of at least this many bytes are marked for huge pages (NumPy's
/// threshold).
pub const HUGE_PAGE_THRESHOLD: usize = 4 << 20;

/// [`System`], marking allocations of at least [`HUGE_PAGE_THRESHOLD`] bytes
/// with `madvise(MADV_HUGEPAGE)` on Linux. See the [module docs](self).
#[derive(Debug, Default, Clone, Copy)]
pub struct HugePageAlloc;

#[allow(unsafe_code)]
// SAFETY: every method forwards to `System` with the caller's arguments, so
// `System`'s guarantees hold; `advise` only passes a sub-range of the block
// just returned to `madvise`, which changes paging hints, not contents.
unsafe impl GlobalAlloc for HugePageAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        advise(p, layout.size());
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        advise(p, layout.size());
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        advise(p, new_size);
        p
    }
}

/// Marks the 2 MiB-aligned pages inside `[p, p + len)` for huge pages.
#[inline]
fn advise(p: *mut u8, len: usize) {
    #[cfg(target_os = "linux")]
    if !p.is_null() && len >= HUGE_PAGE_THRESHOLD {
        const HUGE: usize = 2 << 20;
        let start = (p as usize).next_multiple_of(HUGE);
        let end = (p as usize + len) & !(HUGE - 1);
        if end > start {
            #[allow(unsafe_code)]
            // SAFETY: `[start, end)` lies inside the live block at `p`;
            // MADV_HUGEPAGE is a hint that leaves the memory's contents and
            // mapping alone (an error, e.g. THP disabled, is ignored).
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (p, len);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_writes_grows_and_frees_blocks_of_every_size() {
        for size in [
            1usize,
            4096,
            HUGE_PAGE_THRESHOLD - 1,
            HUGE_PAGE_THRESHOLD,
            9 << 20,
        ] {
            let layout = Layout::from_size_align(size, 64).unwrap();
            #[allow(unsafe_code)]
            // SAFETY: a non-zero layout; the block is written within its
            // size, grown with `realloc` and freed with the layout it has.
            unsafe {
                let p = HugePageAlloc.alloc_zeroed(layout);
                assert!(!p.is_null());
                assert_eq!(*p.add(size - 1), 0);
                *p.add(size - 1) = 7;
                let q = HugePageAlloc.realloc(p, layout, size * 2);
                assert_eq!(*q.add(size - 1), 7);
                HugePageAlloc.dealloc(q, Layout::from_size_align(size * 2, 64).unwrap());
            }
        }
    }
}
