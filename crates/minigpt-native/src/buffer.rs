//! [`Buf`]: the read-only memory packed weights live in: an aligned allocation advised into
//! huge pages, or a range of a mapped packed-weights file that moves into such an allocation
//! when asked ([`Buf::settle`]).

// Unsafe code: the buffer's own allocation, its huge-page advice, the view of a mapped file's
// bytes as values, and the slice over it.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use crate::mapped::MappedFile;

/// A read-only buffer of packed weights. Allocated ones are aligned to 2 MiB and advised into
/// transparent huge pages where Linux offers them: a decode step streams every weight, and
/// 4 KiB pages cost a TLB miss every 4 KiB (PERFORMANCE.md, "Huge pages"). Mapped ones read a
/// packed-weights file in place (no copy, so the first token comes as soon as the file is
/// mapped) until [`Settler::settle`] copies them into such an allocation, one segment at a
/// time: each segment is read from wherever it is at that moment, so the process never holds
/// more than one segment twice.
pub struct Buf<T: Copy> {
    /// `None` when there are no values.
    shared: Option<Arc<Shared<T>>>,
    len: usize,
}

/// A buffer's storage, shared with the thread that settles it.
struct Shared<T> {
    len: usize,
    /// Values per segment (the last may have fewer).
    seg: usize,
    /// Where each segment's values are read from now: the map, then the allocation once
    /// settled. Both live as long as `self`, so a reader holding an old address stays valid.
    current: Box<[AtomicPtr<T>]>,
    /// The allocation (from the start for built buffers, made by `settle` for mapped ones).
    heap: OnceLock<Heap<T>>,
    /// The map the segments first point into, and the byte offset of the values in it.
    mapped: Option<(Arc<MappedFile>, usize)>,
}

/// An allocation of `layout`, freed on drop.
struct Heap<T> {
    ptr: std::ptr::NonNull<T>,
    layout: std::alloc::Layout,
}

// SAFETY: `Heap` owns its memory like a `Box<[T]>`, so moving it to another thread is as sound
// as moving a `Box<[T]>` of `Send` values.
unsafe impl<T: Send> Send for Heap<T> {}
// SAFETY: as above; a segment is written only before its address is published (see
// `Shared::settle`), and shared access only ever reads published segments.
unsafe impl<T: Sync> Sync for Heap<T> {}

impl<T> Drop for Heap<T> {
    fn drop(&mut self) {
        // SAFETY: allocated by `Heap::alloc` with this layout (non-zero size), freed only here.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr().cast(), self.layout) }
    }
}

impl<T: Copy> Heap<T> {
    const ALIGN: usize = 2 << 20;

    /// Uninitialised room for `len` values (`len * size_of::<T>() > 0`), advised into huge
    /// pages.
    fn alloc(len: usize) -> Self {
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
        Self { ptr, layout }
    }
}

// SAFETY: the `AtomicPtr`s point into memory the same `Shared` owns (its heap, or its map) and
// that is only read once published, so sharing or moving `Shared` is as sound as for a
// `Box<[T]>`.
unsafe impl<T: Send> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for Shared<T> {}

impl<T: Copy> Buf<T> {
    /// A buffer of the `len` values already written to `heap`, in one segment.
    fn from_heap(heap: Heap<T>, len: usize) -> Self {
        let current = Box::new([AtomicPtr::new(heap.ptr.as_ptr())]);
        let cell = OnceLock::new();
        let _ = cell.set(heap);
        Self {
            shared: Some(Arc::new(Shared {
                len,
                seg: len,
                current,
                heap: cell,
                mapped: None,
            })),
            len,
        }
    }

    /// `len` values `f(i)`.
    pub fn new(len: usize, f: impl Fn(usize) -> T) -> Self {
        if len * std::mem::size_of::<T>() == 0 {
            return Self::empty();
        }
        let heap = Heap::<T>::alloc(len);
        let raw = heap.ptr.as_ptr();
        for i in 0..len {
            // SAFETY: `i < len`, inside the allocation; each slot is written once.
            unsafe { raw.add(i).write(f(i)) };
        }
        Self::from_heap(heap, len)
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
        let heap = Heap::<T>::alloc(len);
        let out = Out(heap.ptr.as_ptr());
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
        // allocation is then freed, never read).
        Self::from_heap(heap, len)
    }

    /// `len` values read in place from `map`'s bytes at `offset`, in segments of `seg` values
    /// (the unit a settle moves, and the most a reader may read from one address: see
    /// [`Buf::ptr`]). `None` when the values do not lie inside the map, are misaligned for
    /// `T`, or `seg` is 0. Any bytes are valid values of the plain numbers `T` stands for.
    pub fn mapped(map: &Arc<MappedFile>, offset: usize, len: usize, seg: usize) -> Option<Self>
    where
        T: Plain,
    {
        let bytes = len.checked_mul(std::mem::size_of::<T>())?;
        let end = offset.checked_add(bytes)?;
        let all = map.bytes();
        if end > all.len() || seg == 0 {
            return None;
        }
        if bytes == 0 {
            return Some(Self::empty());
        }
        let start = all[offset..].as_ptr().cast::<T>().cast_mut();
        if !start.is_aligned() {
            return None;
        }
        let current = (0..len.div_ceil(seg))
            .map(|s| AtomicPtr::new(start.wrapping_add(s * seg)))
            .collect();
        Some(Self {
            shared: Some(Arc::new(Shared {
                len,
                seg,
                current,
                heap: OnceLock::new(),
                mapped: Some((Arc::clone(map), offset)),
            })),
            len,
        })
    }

    /// No values (and no allocation).
    pub fn empty() -> Self {
        Self {
            shared: None,
            len: 0,
        }
    }

    /// Values held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Where value `i` (`< len`) is read from now. The values from `i` to the end of its
    /// segment are readable there for as long as `self` lives (a settled segment's old address
    /// included); a buffer built in memory is one segment.
    #[inline]
    pub fn ptr(&self, i: usize) -> *const T {
        let s = self.shared.as_ref().expect("an index into an empty buffer");
        let seg = i / s.seg;
        s.current[seg]
            .load(Ordering::Acquire)
            .wrapping_add(i - seg * s.seg)
            .cast_const()
    }

    /// Values `i..i + n`, which must lie inside one segment (a packed panel does).
    pub fn slice(&self, i: usize, n: usize) -> &[T] {
        let Some(s) = self.shared.as_ref() else {
            assert_eq!(i + n, 0, "a slice of an empty buffer");
            return &[];
        };
        assert!(
            i + n <= self.len && (n == 0 || i / s.seg == (i + n - 1) / s.seg),
            "values {i}..{} are not inside one segment",
            i + n
        );
        // SAFETY: `i..i + n` lies inside one segment of initialised values, readable at
        // `ptr(i)` for as long as `self` lives (see `Buf::ptr`).
        unsafe { std::slice::from_raw_parts(self.ptr(i), n) }
    }

    /// Value `i`.
    pub fn get(&self, i: usize) -> T {
        assert!(i < self.len, "index {i} outside a buffer of {}", self.len);
        // SAFETY: `i < len`, so `ptr(i)` points at an initialised value (see `Buf::ptr`).
        unsafe { self.ptr(i).read() }
    }

    /// Each segment's values, as they are read now.
    pub fn segments(&self) -> impl Iterator<Item = &[T]> {
        let (seg, len) = self.shared.as_ref().map_or((1, 0), |s| (s.seg, s.len));
        (0..len.div_ceil(seg)).map(move |k| {
            let n = seg.min(len - k * seg);
            // SAFETY: segment `k` holds `n` initialised values at `ptr(k * seg)` for as long
            // as `self` lives (see `Buf::ptr`).
            unsafe { std::slice::from_raw_parts(self.ptr(k * seg), n) }
        })
    }

    /// All values, copied out.
    #[cfg(test)]
    pub fn to_vec(&self) -> Vec<T> {
        self.segments().flatten().copied().collect()
    }

    /// True when some segment is still read from a mapped file.
    pub fn is_mapped(&self) -> bool {
        self.shared.as_ref().is_some_and(|s| {
            s.mapped.as_ref().is_some_and(|(map, _)| {
                let range = map.bytes().as_ptr_range();
                s.current
                    .iter()
                    .any(|p| range.contains(&p.load(Ordering::Acquire).cast_const().cast::<u8>()))
            })
        })
    }

    /// A handle that settles this buffer from another thread ([`Settler::settle`]), while it
    /// still exists; `None` when there is nothing to settle.
    pub fn settler(&self) -> Option<Settler>
    where
        T: Send + Sync + 'static,
    {
        let shared = self.shared.as_ref()?;
        shared.mapped.as_ref()?;
        let weak: Weak<Shared<T>> = Arc::downgrade(shared);
        Some(Settler(Box::new(move || {
            weak.upgrade().map(|s| s.settle()).is_some()
        })))
    }
}

/// The bytes of plain values, in memory order (for writing a packed-weights file).
pub fn bytes_of<T: Plain>(values: &[T]) -> &[u8] {
    // SAFETY: `T` is a plain number type without padding (the `Plain` contract), so the values'
    // memory is `size_of_val` initialised bytes, borrowed for as long as `values`.
    unsafe { std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), size_of_val(values)) }
}

/// Moves a mapped buffer into an allocation in huge pages (see [`Buf::settler`]).
pub struct Settler(Box<dyn Fn() -> bool + Send>);

impl Settler {
    /// Settles the buffer; false when it no longer exists.
    pub fn settle(&self) -> bool {
        (self.0)()
    }
}

impl<T: Copy> Shared<T> {
    /// Copies the mapped values into a huge-page allocation a segment at a time: each segment
    /// is read from the allocation once copied, and its map pages are given back. Readers
    /// that took a segment's map address before keep reading valid, identical values (the map
    /// lives as long as `self`). Called by one thread at a time (the model's settling thread,
    /// or `NativeGpt::settle` after waiting for it).
    fn settle(&self) {
        let Some((map, offset)) = &self.mapped else {
            return;
        };
        let heap = self.heap.get_or_init(|| Heap::alloc(self.len));
        let size = std::mem::size_of::<T>();
        let base = heap.ptr.as_ptr();
        for (k, slot) in self.current.iter().enumerate() {
            let first = k * self.seg;
            let dst = base.wrapping_add(first);
            let src = slot.load(Ordering::Acquire);
            if src == dst {
                continue; // settled before
            }
            let n = self.seg.min(self.len - first);
            // SAFETY: `src` holds segment `k`'s `n` values (in the map, checked in
            // `Buf::mapped`); `dst` is its room in the allocation of `len` values, not yet
            // published, so no one reads it while it is written; the two never overlap.
            unsafe { std::ptr::copy_nonoverlapping(src, dst, n) };
            slot.store(dst, Ordering::Release);
            map.release(offset + first * size..offset + (first + n) * size);
        }
    }
}

/// Number types any bytes are a valid value of, with no padding.
pub trait Plain: Copy + 'static {}
impl Plain for f32 {}
impl Plain for u16 {}

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

impl<T: Copy> std::fmt::Debug for Buf<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let place = if self.is_mapped() { "mapped" } else { "owned" };
        write!(f, "Buf({} values, {place})", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapped_buffer_reads_the_same_values_before_and_after_settling() {
        let dir = tempdir();
        let path = dir.join("w.bin");
        let values: Vec<f32> = (0..3_000_000).map(|i| i as f32 * 0.5).collect();
        let mut bytes = vec![0u8; 8]; // an offset, as in a packed file
        bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        std::fs::write(&path, &bytes).unwrap();
        let map = Arc::new(MappedFile::open(&path).unwrap());
        let seg = 1_000_000;
        assert!(Buf::<f32>::mapped(&map, 2, 4, seg).is_none(), "misaligned");
        assert!(
            Buf::<f32>::mapped(&map, 8, values.len() + 1, seg).is_none(),
            "past the end"
        );
        assert!(
            Buf::<f32>::mapped(&map, 8, 4, 0).is_none(),
            "no segment size"
        );
        let buf = Buf::<f32>::mapped(&map, 8, values.len(), seg).unwrap();
        assert!(buf.is_mapped());
        assert_eq!(buf.segments().count(), 3);
        assert_eq!(buf.to_vec(), values);
        assert_eq!(buf.get(2_500_001), values[2_500_001]);
        let settler = buf.settler().expect("a mapped buffer settles");
        let before = buf.ptr(1_000_000);
        assert!(settler.settle());
        assert!(!buf.is_mapped());
        assert_ne!(buf.ptr(1_000_000), before, "reads moved to the allocation");
        assert_eq!(buf.to_vec(), values);
        assert_eq!(buf.get(2_999_999), values[2_999_999]);
        // The old address still reads the same values (a reader may hold it).
        // SAFETY: the map lives as long as `buf`, and `before` points at a segment in it.
        assert_eq!(unsafe { before.read() }, values[1_000_000]);
        assert!(settler.settle(), "settling twice is harmless");
        drop(buf);
        assert!(!settler.settle(), "a dropped buffer is not settled");
        drop(map);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn built_buffers_have_nothing_to_settle() {
        let b = Buf::new(10, |i| i as f32);
        assert!(b.settler().is_none() && !b.is_mapped());
        assert_eq!(b.segments().count(), 1);
        let bytes: Vec<u8> = b.segments().flat_map(bytes_of).copied().collect();
        assert_eq!(bytes.len(), 40);
        assert_eq!(&bytes[4..8], &1f32.to_ne_bytes());
        assert_eq!(Buf::<u16>::empty().len(), 0);
        assert_eq!(Buf::<u16>::empty().segments().count(), 0);
    }

    fn tempdir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "minigpt-buf-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
