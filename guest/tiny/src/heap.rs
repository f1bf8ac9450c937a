//! A bump allocator over the heap range the loader gave us.
//!
//! There is one CPU and no interrupts, so plain atomics with relaxed ordering
//! are enough. Freeing or growing the most recent allocation is done in place,
//! which covers the probes' pattern of allocating a buffer per repetition and
//! dropping it again; anything else is never reclaimed.

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// The guest's global allocator.
pub struct Bump {
    next: AtomicUsize,
    end: AtomicUsize,
    /// Start of the most recent allocation, to free or grow it in place.
    last: AtomicUsize,
}

impl Bump {
    /// An allocator with no memory until [`Bump::init`].
    pub const fn empty() -> Self {
        Bump {
            next: AtomicUsize::new(0),
            end: AtomicUsize::new(0),
            last: AtomicUsize::new(usize::MAX),
        }
    }

    /// Hands the allocator `[start, end)`.
    pub fn init(&self, start: usize, end: usize) {
        self.next.store(start, Relaxed);
        self.end.store(end, Relaxed);
        self.last.store(usize::MAX, Relaxed);
    }
}

// SAFETY: every returned block lies inside the range given to `init`, is
// aligned as requested, and never overlaps a live block: `next` only moves
// back when the block being freed is the last one handed out.
unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let next = self.next.load(Relaxed);
        let Some(start) = next
            .checked_add(layout.align() - 1)
            .map(|v| v & !(layout.align() - 1))
        else {
            return core::ptr::null_mut();
        };
        match start.checked_add(layout.size()) {
            Some(end) if end <= self.end.load(Relaxed) => {
                self.next.store(end, Relaxed);
                self.last.store(start, Relaxed);
                start as *mut u8
            }
            _ => core::ptr::null_mut(),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        if ptr as usize == self.last.load(Relaxed) {
            self.next.store(ptr as usize, Relaxed);
            self.last.store(usize::MAX, Relaxed);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let start = ptr as usize;
        if start == self.last.load(Relaxed) {
            if let Some(end) = start.checked_add(new_size)
                && end <= self.end.load(Relaxed)
            {
                self.next.store(end, Relaxed);
                return ptr;
            }
            return core::ptr::null_mut();
        }
        // SAFETY: `layout` has a non-zero size or align per GlobalAlloc's
        // contract; the new layout keeps the alignment.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: forwarding to our own alloc with a valid layout.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are live, distinct, and at least min(old, new) bytes long.
            unsafe { core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
        }
        new
    }
}
