//! Which pool buffers a socket has lent to the kernel.
//!
//! The kernel hands buffers back by address. Before an address becomes a
//! `Packet` again it must be one this side lent and has not had back; the
//! set checks that in a bit test, so a duplicated or stray address from
//! the kernel is a counted drop instead of a buffer with two owners.

/// A set of buffer indices.
#[derive(Debug)]
pub struct LentSet {
    bits: Vec<u64>,
    count: usize,
}

impl LentSet {
    /// An empty set for a pool of `buffers` buffers.
    pub fn new(buffers: u32) -> LentSet {
        LentSet {
            bits: vec![0; (buffers as usize).div_ceil(64)],
            count: 0,
        }
    }

    /// Adds `i`; false if it was already in (or out of range).
    #[inline]
    pub fn insert(&mut self, i: u32) -> bool {
        let Some(w) = self.bits.get_mut(i as usize / 64) else {
            return false;
        };
        let b = 1u64 << (i % 64);
        if *w & b != 0 {
            return false;
        }
        *w |= b;
        self.count += 1;
        true
    }

    /// Removes `i`; false if it was not in.
    #[inline]
    pub fn remove(&mut self, i: u32) -> bool {
        let Some(w) = self.bits.get_mut(i as usize / 64) else {
            return false;
        };
        let b = 1u64 << (i % 64);
        if *w & b == 0 {
            return false;
        }
        *w &= !b;
        self.count -= 1;
        true
    }

    /// How many are lent.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Empties the set, returning its members.
    pub fn take_all(&mut self) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.count);
        for (wi, w) in self.bits.iter_mut().enumerate() {
            let mut bits = std::mem::take(w);
            while bits != 0 {
                out.push(wi as u32 * 64 + bits.trailing_zeros());
                bits &= bits - 1;
            }
        }
        self.count = 0;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_tracked_once() {
        let mut s = LentSet::new(130);
        assert!(s.insert(0) && s.insert(129) && s.insert(64));
        assert!(!s.insert(64), "a buffer is lent once");
        assert!(!s.insert(130), "out of range");
        assert!(s.remove(64));
        assert!(!s.remove(64), "and comes back once");
        assert_eq!(s.len(), 2);
        assert_eq!(s.take_all(), vec![0, 129]);
        assert_eq!(s.len(), 0);
    }
}
