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

    /// Uninitialised room for `len` values (`len * size_of::<T>() > 0`), advised into huge
    /// pages, and its layout.
    fn alloc(len: usize) -> (std::ptr::NonNull<T>, std::alloc::Layout) {
        let bytes = len * std::mem::size_of::<T>();
        let layout = std::alloc::Layout::from_size_align(bytes, Self::ALIGN.max(align_of::<T>()))
            .expect("weights fit the address space");
        // SAFETY: the layout has a non-zero size (callers check).
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
        (ptr, layout)
    }

    /// `len` values `f(i)`.
    pub fn new(len: usize, f: impl Fn(usize) -> T) -> Self {
        if len * std::mem::size_of::<T>() == 0 {
            return Self::empty();
        }
        let (ptr, layout) = Self::alloc(len);
        let raw = ptr.as_ptr();
        for i in 0..len {
            // SAFETY: `i < len`, inside the allocation; each slot is written once.
            unsafe { raw.add(i).write(f(i)) };
        }
        Self { ptr, len, layout }
    }

    /// `len` values made `chunk` at a time on the engine's threads: `fill(i, out)` pushes
    /// chunk `i`'s values onto the empty `out` (`chunk` of them, or what is left for the last
    /// chunk; any other count panics).
    pub fn from_chunks(len: usize, chunk: usize, fill: impl Fn(usize, &mut Vec<T>) + Sync) -> Self
    where
        T: Send,
    {
        if len * std::mem::size_of::<T>() == 0 {
            return Self::empty();
        }
        assert!(chunk > 0, "chunks of no values");
        let (ptr, layout) = Self::alloc(len);
        let out = Out(ptr.as_ptr());
        crate::team::team().run(len.div_ceil(chunk), |i| {
            let want = chunk.min(len - i * chunk);
            let mut values = Vec::with_capacity(want);
            fill(i, &mut values);
            assert_eq!(
                values.len(),
                want,
                "chunk {i} has the wrong number of values"
            );
            // SAFETY: chunk `i` is `want` slots from `i * chunk`, inside the allocation; the
            // team hands out each `i` once, so no two threads write the same slots, and no one
            // reads them before `run` returns.
            unsafe {
                std::ptr::copy_nonoverlapping(values.as_ptr(), out.at(i * chunk), want);
            }
        });
        // Every slot was written (a chunk that was not would have panicked above, and the
        // allocation is then leaked, never read).
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

/// The start of a buffer being filled, shared by the threads that fill its chunks.
struct Out<T>(*mut T);

// SAFETY: the threads write disjoint chunks through it (see `Buf::from_chunks`).
unsafe impl<T: Send> Sync for Out<T> {}

impl<T> Out<T> {
    /// The slot `i` values in.
    fn at(&self, i: usize) -> *mut T {
        self.0.wrapping_add(i)
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
