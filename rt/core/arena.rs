//! Scratch memory for one checkpoint or one restart: a single reserved range, bump
//! allocated, unmapped as a whole. One range means the checkpoint can leave exactly
//! that range out of the image.

use syscalls::Errno;

use crate::sys;

pub struct Arena {
    pub base: usize,
    pub size: usize,
    used: usize,
}

impl Arena {
    /// Reserves `size` bytes anywhere (pages are only backed once touched).
    pub fn map(size: usize) -> Result<Arena, Errno> {
        // SAFETY: no MAP_FIXED, so nothing existing is replaced.
        let base = unsafe {
            sys::mmap(
                0,
                size,
                sys::PROT_READ | sys::PROT_WRITE,
                sys::MAP_PRIVATE | sys::MAP_ANONYMOUS | sys::MAP_NORESERVE,
                -1,
                0,
            )?
        };
        Ok(Arena { base, size, used: 0 })
    }

    /// Reserves `size` bytes at exactly `addr`; EEXIST if anything is mapped there.
    pub fn map_at(addr: usize, size: usize) -> Result<Arena, Errno> {
        // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping.
        let base = unsafe {
            sys::mmap(
                addr,
                size,
                sys::PROT_READ | sys::PROT_WRITE,
                sys::MAP_PRIVATE | sys::MAP_ANONYMOUS | sys::MAP_NORESERVE | sys::MAP_FIXED_NOREPLACE,
                -1,
                0,
            )?
        };
        if base != addr {
            // A kernel without MAP_FIXED_NOREPLACE treats it as a hint.
            // SAFETY: we just mapped this range ourselves.
            unsafe {
                let _ = sys::munmap(base, size);
            }
            return Err(Errno::EEXIST);
        }
        Ok(Arena { base, size, used: 0 })
    }

    /// The unused tail of the arena, for a buffer that is filled before its size is known;
    /// `commit` then keeps what was used.
    pub fn tail(&mut self) -> &'static mut [u8] {
        // SAFETY: [base+used, base+size) is mapped read-write, owned by this arena and
        // handed out to nobody else until commit moves `used` past it.
        unsafe { core::slice::from_raw_parts_mut((self.base + self.used) as *mut u8, self.size - self.used) }
    }

    /// Keeps `len` bytes of the last `tail()` and aligns the next allocation.
    pub fn commit(&mut self, len: usize) {
        self.used = (self.used + len + 15) & !15;
        if self.used > self.size {
            self.used = self.size;
        }
    }

    /// A zeroed array of `n` values of `T` (T must be valid when all-zero).
    pub fn alloc<T: Copy>(&mut self, n: usize) -> Result<&'static mut [T], Errno> {
        let align = core::mem::align_of::<T>().max(16);
        let start = (self.base + self.used + align - 1) & !(align - 1);
        let bytes = n.checked_mul(core::mem::size_of::<T>()).ok_or(Errno::ENOMEM)?;
        if start + bytes > self.base + self.size {
            return Err(Errno::ENOMEM);
        }
        self.used = start + bytes - self.base;
        // SAFETY: the range is inside the arena, aligned for T, and never handed out
        // twice; fresh anonymous pages are zero, and reused ones are zeroed here.
        unsafe {
            let p = start as *mut T;
            core::ptr::write_bytes(p as *mut u8, 0, bytes);
            Ok(core::slice::from_raw_parts_mut(p, n))
        }
    }

    /// A growable array of `T` that owns the arena's tail until `finish`.
    pub fn vec<T: Copy>(&mut self) -> ArenaVec<'_, T> {
        let align = core::mem::align_of::<T>().max(16);
        let start = (self.base + self.used + align - 1) & !(align - 1);
        let cap = (self.base + self.size).saturating_sub(start) / core::mem::size_of::<T>();
        ArenaVec {
            arena: self,
            start,
            len: 0,
            cap,
            _t: core::marker::PhantomData,
        }
    }

    /// Reads a whole file (e.g. /proc/self/smaps) into the arena; EFBIG if it does not fit.
    pub fn read_file(&mut self, path: &[u8]) -> Result<&'static [u8], Errno> {
        let fd = sys::open(path, sys::O_RDONLY | sys::O_CLOEXEC, 0)?;
        let buf = self.tail();
        let mut total = 0;
        loop {
            if total == buf.len() {
                return Err(Errno::EFBIG);
            }
            // SAFETY: the rest of buf is valid for writes.
            match unsafe { sys::read(fd.raw(), buf.as_mut_ptr().add(total), buf.len() - total)? } {
                0 => break,
                n => total += n,
            }
        }
        self.commit(total);
        Ok(&buf[..total])
    }

    /// Gives the memory back.
    pub fn unmap(self) {
        // SAFETY: the arena's range is ours; callers drop every slice into it first.
        unsafe {
            let _ = sys::munmap(self.base, self.size);
        }
    }
}

impl ArenaVec<'_, u8> {
    /// `n` more bytes at the end, for the caller to fill (their old contents are
    /// arbitrary); ENOMEM when the arena is full.
    pub fn grow(&mut self, n: usize) -> Result<&mut [u8], Errno> {
        if self.cap - self.len < n {
            return Err(Errno::ENOMEM);
        }
        // SAFETY: [start + len, start + len + n) is inside the arena tail this vector
        // owns, and any byte value is a valid u8.
        let tail = unsafe { core::slice::from_raw_parts_mut((self.start + self.len) as *mut u8, n) };
        self.len += n;
        Ok(tail)
    }
}

/// A vector in the arena's tail; nothing else may be allocated until `finish`.
pub struct ArenaVec<'a, T> {
    arena: &'a mut Arena,
    start: usize,
    len: usize,
    cap: usize,
    _t: core::marker::PhantomData<T>,
}

impl<'a, T: Copy> ArenaVec<'a, T> {
    /// ENOMEM when the arena is full.
    pub fn push(&mut self, value: T) -> Result<(), Errno> {
        if self.len == self.cap {
            return Err(Errno::ENOMEM);
        }
        // SAFETY: start + len*size is inside the arena tail this vector owns.
        unsafe { core::ptr::write((self.start as *mut T).add(self.len), value) };
        self.len += 1;
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_slice(&self) -> &[T] {
        // SAFETY: the first len elements were initialized by push.
        unsafe { core::slice::from_raw_parts(self.start as *const T, self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [T] {
        // SAFETY: the first len elements were initialized by push; self is borrowed
        // mutably, so nothing else reaches them meanwhile.
        unsafe { core::slice::from_raw_parts_mut(self.start as *mut T, self.len) }
    }

    /// Drops the elements from `len` on.
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    pub fn last_mut(&mut self) -> Option<&mut T> {
        if self.len == 0 {
            None
        } else {
            // SAFETY: index len-1 was written by push.
            Some(unsafe { &mut *(self.start as *mut T).add(self.len - 1) })
        }
    }

    /// Ends the vector, keeping its elements allocated.
    pub fn finish(self) -> &'static mut [T] {
        let bytes = self.len * core::mem::size_of::<T>();
        self.arena.used = self.start + bytes - self.arena.base;
        self.arena.commit(0);
        // SAFETY: the first len elements were initialized by push and stay allocated.
        unsafe { core::slice::from_raw_parts_mut(self.start as *mut T, self.len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_are_aligned_zeroed_and_bounded() {
        let mut a = Arena::map(1 << 16).unwrap();
        let bytes = a.alloc::<u8>(3).unwrap();
        bytes.copy_from_slice(b"abc");
        let words = a.alloc::<u64>(4).unwrap();
        assert_eq!(words.as_ptr() as usize % 16, 0);
        assert_eq!(words, &[0; 4]);
        assert!(bytes.as_ptr() as usize + 3 <= words.as_ptr() as usize, "no overlap");
        assert_eq!(a.alloc::<u8>(1 << 16).err(), Some(Errno::ENOMEM));
        assert_eq!(a.alloc::<u64>(usize::MAX).err(), Some(Errno::ENOMEM), "size overflow");
        assert_eq!(bytes, b"abc", "a failed allocation changes nothing");
        a.unmap();
    }

    #[test]
    fn vectors_grow_until_the_arena_is_full() {
        let mut a = Arena::map(4096).unwrap();
        let mut v = a.vec::<u32>();
        assert!(v.is_empty());
        let mut n = 0u32;
        while v.push(n).is_ok() {
            n += 1;
        }
        assert_eq!(n as usize, 4096 / 4);
        *v.last_mut().unwrap() = 7;
        let done = v.finish();
        assert_eq!(done.len(), 1024);
        assert_eq!((done[0], done[1022], done[1023]), (0, 1022, 7));
        assert_eq!(
            a.alloc::<u8>(1).err(),
            Some(Errno::ENOMEM),
            "finish keeps what was pushed"
        );
        a.unmap();
    }

    #[test]
    fn whole_files_and_fixed_addresses() {
        let mut a = Arena::map(1 << 20).unwrap();
        let maps = a.read_file(b"/proc/self/maps").unwrap();
        assert!(maps.ends_with(b"\n") && maps.len() > 100);
        assert_eq!(a.read_file(b"/nonexistent/file").err(), Some(Errno::ENOENT));
        let mut small = Arena::map(64).unwrap();
        assert_eq!(small.read_file(b"/proc/self/maps").err(), Some(Errno::EFBIG));
        assert_eq!(
            Arena::map_at(a.base, 4096).err(),
            Some(Errno::EEXIST),
            "never over a mapping"
        );
        a.unmap();
        small.unmap();
    }
}
