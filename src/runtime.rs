//! The one place the library starts an async runtime, and runs blocking
//! work inside one.
//!
//! Commands are synchronous; the network and object-storage work under
//! them is async. Every command that needs a runtime asks [`new`](crate::runtime::new) for one
//! (and [`block_on`](crate::runtime::block_on) for the common one-future case), so the runtime's
//! features (I/O and timers on) and the choice of flavour live here.

use std::future::Future;

/// How many threads a runtime gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    /// The calling thread only: many small requests, no cross-thread
    /// wake-ups, the other cores left to a server on the same machine.
    One,
    /// A worker per core: downloads, hashing, serving.
    PerCore,
}

/// A runtime with I/O and timers enabled.
pub fn new(threads: Threads) -> std::io::Result<tokio::runtime::Runtime> {
    match threads {
        Threads::One => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Threads::PerCore => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    }
}

/// Runs `fut` to completion on a fresh runtime.
pub fn block_on<F: Future>(threads: Threads, fut: F) -> std::io::Result<F::Output> {
    Ok(new(threads)?.block_on(fut))
}

/// Runs CPU- or disk-bound work (hashing, decompressing, verifying a whole
/// archive) without stalling the other downloads: on a multi-threaded
/// runtime the worker hands its other tasks over first.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}
