//! [`Buf`]: the aligned, read-only memory packed weights live in.

// Unsafe code: the buffer's own allocation, its huge-page advice, and the slice over it.
#![allow(unsafe_code)]

/// A read-only buffer of packed weights, aligned to 2 MiB and advised into transparent huge
/// pages where Linux offers them: a decode step streams every weight, and 4 KiB pages cost a
/// TLB miss every 4 KiB (PERFORMANCE.md, "Huge pages").
pub struct Buf<T: Copy> {
    ptr: std::ptr::NonNull<T>,
    len: usize,
    layout: std::alloc::Layout,
}

// SAFETY: `Buf` owns its memory like a `Box<[T]>` and is never written after construction,
// so moving it to another thread is as sound as moving a `Box<[T]>` of `Send` values.
unsafe impl<T: Copy + Send> Send for Buf<T> {}
// SAFETY: as above; shared access only ever reads.
unsafe impl<T: Copy + Sync> Sync for Buf<T> {}

impl<T: Copy> Buf<T> {
    const ALIGN: usize = 2 << 20;

    /// `len` values `f(i)`.
    pub fn new(len: usize, f: impl Fn(usize) -> T) -> Self {
        let bytes = len * std::mem::size_of::<T>();
        if bytes == 0 {
            return Self::empty();
        }
        let layout = std::alloc::Layout::from_size_align(bytes, Self::ALIGN.max(align_of::<T>()))
            .expect("weights fit the address space");
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { std::alloc::alloc(layout) }.cast::<T>();
        let Some(ptr) = std::ptr::NonNull::new(raw) else {
            std::alloc::handle_alloc_error(layout)
        };
        #[cfg(target_os = "linux")]
        if bytes >= Self::ALIGN {
            // SAFETY: the range is this allocation's own, 2 MiB aligned and not yet touched; the
            // advice changes how pages are backed, never their contents.
            unsafe {
                libc::madvise(raw.cast(), bytes, libc::MADV_HUGEPAGE);
            }
        }
        for i in 0..len {
            // SAFETY: `i < len`, inside the allocation; each slot is written once.
            unsafe { raw.add(i).write(f(i)) };
        }
        Self { ptr, len, layout }
    }

    /// No values (and no allocation).
    pub fn empty() -> Self {
        Self {
            ptr: std::ptr::NonNull::dangling(),
            len: 0,
            layout: std::alloc::Layout::new::<()>(),
        }
    }
}

impl<T: Copy> std::ops::Deref for Buf<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: `len` initialised values live at `ptr` for as long as `self` (or `len` is 0
        // and `ptr` is dangling but aligned, which an empty slice allows).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> Drop for Buf<T> {
    fn drop(&mut self) {
        if self.layout.size() > 0 {
            // SAFETY: allocated in `new` with this layout, and freed only here.
            unsafe { std::alloc::dealloc(self.ptr.as_ptr().cast(), self.layout) }
        }
    }
}

impl<T: Copy> std::fmt::Debug for Buf<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Buf({} values)", self.len)
    }
}
