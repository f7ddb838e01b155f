//! Locks that survive a panic elsewhere: every value kept under one here is replaced whole,
//! never left half-written, so a poisoned lock's value is still sound.

use std::sync::{Mutex, MutexGuard, PoisonError};

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
