//! `Global<T>`: a static whose exclusive access is guaranteed by the checkpoint protocol
//! rather than by a lock (a lock cannot be taken inside a signal handler).

use core::cell::UnsafeCell;

pub struct Global<T>(UnsafeCell<T>);

// SAFETY: every user documents which phase of the protocol gives it exclusive access
// (the constructor before any checkpoint, the coordinator while others are parked, the
// restore code before any other thread exists).
unsafe impl<T> Sync for Global<T> {}

impl<T> Global<T> {
    pub const fn new(value: T) -> Global<T> {
        Global(UnsafeCell::new(value))
    }

    pub fn get(&self) -> *mut T {
        self.0.get()
    }
}
