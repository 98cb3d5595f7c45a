//! The buffers multipart uploads fill, reused from one part to the next.
//!
//! Every part is one allocation of exactly [`PART`] bytes. Freed and
//! allocated again for each part, those buffers would not go back to the
//! system: glibc raises its mmap threshold to the size of the largest
//! mmapped block freed, so after the first part every later one comes from
//! a heap arena, one arena per thread the upload task ran on, and each
//! arena keeps what it once held (2 × 512 MiB archives: 81 MiB peak RSS
//! instead of the ~47 MiB the parts and the runtime need). A [`PartPool`]
//! hands the same buffers round instead: a part sent to the store is a
//! [`Bytes`] that owns its buffer and gives it back to the pool once the
//! request (and object_store's retry copy of it) is dropped. So the
//! buffers ever allocated are the most ever in use at once (uploads ×
//! (one filling + those in flight)), and at most [`MAX_IDLE`] stay
//! allocated after a burst.

use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// Part size of multipart uploads (S3's minimum): at most three parts'
/// worth (one filling, two in flight) is in memory per file.
pub const PART: usize = 5 << 20;

/// Idle buffers kept for the next parts (beyond them a returned buffer is
/// freed): enough for a few uploads' worth of parts.
pub const MAX_IDLE: usize = 8;

/// Buffers of [`PART`] bytes capacity, shared by the uploads of one store.
#[derive(Default)]
pub struct PartPool {
    idle: Mutex<Vec<Vec<u8>>>,
}

impl PartPool {
    /// An empty buffer of [`PART`] bytes capacity: an idle one if any.
    pub fn take(&self) -> Vec<u8> {
        let reused = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        reused.unwrap_or_else(|| Vec::with_capacity(PART))
    }

    /// `buf` as the body of a request; its buffer comes back to `pool`
    /// when the last clone of the [`Bytes`] is dropped.
    pub fn freeze(pool: &Arc<PartPool>, buf: Vec<u8>) -> Bytes {
        Bytes::from_owner(Pooled {
            buf,
            pool: pool.clone(),
        })
    }

    /// Keeps `buf` for a later part (or frees it beyond [`MAX_IDLE`]).
    pub fn give_back(&self, mut buf: Vec<u8>) {
        if buf.capacity() != PART {
            return;
        }
        buf.clear();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(buf);
        }
    }

    #[cfg(test)]
    fn idle(&self) -> usize {
        self.idle.lock().unwrap().len()
    }
}

/// A part's buffer on its way to the store.
struct Pooled {
    buf: Vec<u8>,
    pool: Arc<PartPool>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sent_part_comes_back_once_every_clone_is_dropped() {
        let pool = Arc::new(PartPool::default());
        let mut buf = pool.take();
        assert_eq!(buf.capacity(), PART);
        buf.extend_from_slice(b"part one");
        let ptr = buf.as_ptr();
        let body = PartPool::freeze(&pool, buf);
        let retry_copy = body.clone();
        assert_eq!(&body[..], b"part one");
        drop(body);
        assert_eq!(pool.idle(), 0, "still held by the retry copy");
        drop(retry_copy);
        assert_eq!(pool.idle(), 1);
        let again = pool.take();
        assert_eq!(again.as_ptr(), ptr, "the same allocation is reused");
        assert!(again.is_empty());
    }

    #[test]
    fn idle_buffers_are_capped_and_foreign_ones_dropped() {
        let pool = Arc::new(PartPool::default());
        let bufs: Vec<_> = (0..MAX_IDLE + 3).map(|_| pool.take()).collect();
        for b in bufs {
            pool.give_back(b);
        }
        assert_eq!(pool.idle(), MAX_IDLE);
        let pool = PartPool::default();
        pool.give_back(Vec::with_capacity(10));
        assert_eq!(pool.idle(), 0);
    }
}
