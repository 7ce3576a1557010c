//! A vector in copy-on-write chunks.
//!
//! An event's booking records live here so that handing the state to a
//! snapshot costs one pointer copy per chunk, not a copy of millions of
//! records while the actor (and every booking of that event) waits. After a
//! hand-over, the first change to a shared chunk copies that chunk alone.

use std::fmt;
use std::ops::{Index, IndexMut};
use std::sync::Arc;

use serde::de::{SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Elements per chunk: a copy-on-write copy moves at most this many.
const CHUNK: usize = 4096;

/// A growable sequence whose clones share chunks until one side writes.
pub struct ChunkedVec<T> {
    /// Full chunks, then one partly filled; each holds exactly `CHUNK`
    /// elements of capacity, so growth never copies old elements.
    chunks: Vec<Arc<Vec<T>>>,
    /// Elements in all chunks.
    len: usize,
}

impl<T> Default for ChunkedVec<T> {
    fn default() -> Self {
        Self {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Clone for ChunkedVec<T> {
    /// Shares every chunk: O(len / CHUNK).
    fn clone(&self) -> Self {
        Self {
            chunks: self.chunks.clone(),
            len: self.len,
        }
    }
}

impl<T: Clone> ChunkedVec<T> {
    /// An empty vector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends an element.
    pub fn push(&mut self, value: T) {
        if self.len.is_multiple_of(CHUNK) {
            self.chunks.push(Arc::new(Vec::with_capacity(CHUNK)));
        }
        if let Some(last) = self.chunks.last_mut() {
            Arc::make_mut(last).push(value);
            self.len += 1;
        }
    }

    /// Removes the last element.
    pub fn pop(&mut self) -> Option<T> {
        let last = self.chunks.last_mut()?;
        let value = Arc::make_mut(last).pop()?;
        if last.is_empty() {
            self.chunks.pop();
        }
        self.len -= 1;
        Some(value)
    }

    /// The element at `index`.
    pub fn get(&self, index: usize) -> Option<&T> {
        self.chunks.get(index / CHUNK)?.get(index % CHUNK)
    }

    /// The element at `index`, for writing; copies its chunk first if a
    /// clone still shares it.
    pub fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        Arc::make_mut(self.chunks.get_mut(index / CHUNK)?).get_mut(index % CHUNK)
    }

    /// Every element in order.
    pub fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.chunks.iter().flat_map(|c| c.iter())
    }
}

impl<T: Clone> Index<usize> for ChunkedVec<T> {
    type Output = T;

    fn index(&self, index: usize) -> &T {
        match self.get(index) {
            Some(value) => value,
            None => panic!("index {index} out of bounds (len {})", self.len),
        }
    }
}

impl<T: Clone> IndexMut<usize> for ChunkedVec<T> {
    fn index_mut(&mut self, index: usize) -> &mut T {
        let len = self.len;
        match self.get_mut(index) {
            Some(value) => value,
            None => panic!("index {index} out of bounds (len {len})"),
        }
    }
}

impl<T: Clone + PartialEq> PartialEq for ChunkedVec<T> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<T: Clone + Eq> Eq for ChunkedVec<T> {}

impl<T: Clone + fmt::Debug> fmt::Debug for ChunkedVec<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Builds a vector chunk by chunk, wrapping each chunk once when it is
/// full: no per-element sharing check, which matters when a restore decodes
/// millions of records.
struct Builder<T> {
    /// The chunks so far.
    out: ChunkedVec<T>,
    /// The chunk being filled.
    open: Vec<T>,
}

impl<T> Builder<T> {
    fn new() -> Self {
        Self {
            out: ChunkedVec::default(),
            open: Vec::with_capacity(CHUNK),
        }
    }

    fn push(&mut self, value: T) {
        self.open.push(value);
        self.out.len += 1;
        if self.open.len() == CHUNK {
            let full = std::mem::replace(&mut self.open, Vec::with_capacity(CHUNK));
            self.out.chunks.push(Arc::new(full));
        }
    }

    fn finish(mut self) -> ChunkedVec<T> {
        if !self.open.is_empty() {
            self.out.chunks.push(Arc::new(self.open));
        }
        self.out
    }
}

impl<T: Clone> FromIterator<T> for ChunkedVec<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut builder = Builder::new();
        for value in iter {
            builder.push(value);
        }
        builder.finish()
    }
}

/// Stored as a plain sequence: the same bytes as a `Vec<T>`.
impl<T: Clone + Serialize> Serialize for ChunkedVec<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.len))?;
        for value in self.iter() {
            seq.serialize_element(value)?;
        }
        seq.end()
    }
}

impl<'de, T: Clone + Deserialize<'de>> Deserialize<'de> for ChunkedVec<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Seq<T>(std::marker::PhantomData<T>);

        impl<'de, T: Clone + Deserialize<'de>> Visitor<'de> for Seq<T> {
            type Value = ChunkedVec<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sequence")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut builder = Builder::new();
                while let Some(value) = seq.next_element()? {
                    builder.push(value);
                }
                Ok(builder.finish())
            }
        }

        deserializer.deserialize_seq(Seq(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clone_keeps_its_values_when_the_original_changes() {
        let mut a: ChunkedVec<u32> = (0..10_000).collect();
        let b = a.clone();
        a[5] = 99;
        a.push(7);
        a[9_000] = 1;
        assert_eq!((b[5], b[9_000], b.len()), (5, 9_000, 10_000));
        assert_eq!((a[5], a[9_000], a.len()), (99, 1, 10_001));
        assert_eq!(a.pop(), Some(7));
        assert_eq!(a.get(10_000), None);
    }

    #[test]
    fn popping_across_a_chunk_boundary_drops_the_empty_chunk() {
        let mut c: ChunkedVec<u8> = std::iter::repeat_n(1, CHUNK + 1).collect();
        assert_eq!(c.chunks.len(), 2);
        c.pop();
        assert_eq!(c.chunks.len(), 1);
        c.push(2);
        assert_eq!((c.len(), c[CHUNK]), (CHUNK + 1, 2));
    }
}
