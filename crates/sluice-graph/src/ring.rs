//! A bounded, lock-free single-producer single-consumer ring, the road
//! packets take from one worker to another (handoff).
//!
//! [`ring`] makes a [`Sender`] and a [`Receiver`]; each lives on one
//! thread. Both move items in batches: one release store publishes a whole
//! batch, and each side reads the other's index only when its cached copy
//! says the ring looks full (or empty), so a busy ring costs about one
//! shared cache line transfer per batch, not per item. Pushing never
//! blocks: what does not fit stays with the caller, who counts it dropped.
//!
//! Items left in the ring when both halves are gone must not be lost (a
//! packet is a buffer of the pool): [`Sender::close`] and
//! [`Receiver::close`] hand them to whichever half closes last, which frees
//! them. A half dropped without `close` drops the items with `T`'s own
//! `Drop` when it is the last.
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

/// Keeps the two indices on separate cache-line pairs (x86 fetches lines
/// two at a time), so the producer's writes do not evict the consumer's.
#[repr(align(128))]
struct Padded<T>(T);

const SENDER_GONE: u8 = 1;
const RECEIVER_GONE: u8 = 2;

struct Shared<T> {
    /// Next slot to read; written by the receiver only.
    head: Padded<AtomicUsize>,
    /// Next slot to write; written by the sender only.
    tail: Padded<AtomicUsize>,
    /// `SENDER_GONE | RECEIVER_GONE` as the halves close.
    gone: AtomicU8,
    /// The sender said it will send no more (it may still be alive).
    finished: AtomicBool,
    mask: usize,
    /// Slots `head..tail` (modulo the capacity) hold initialised items.
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
}

// SAFETY: the ring moves `T`s between threads (hence `T: Send`). A slot is
// touched by the sender only while it lies outside `head..tail` and by the
// receiver only while inside, and the index stores (release) and loads
// (acquire) order those accesses; no `&T` is ever shared.
unsafe impl<T: Send> Sync for Shared<T> {}
// SAFETY: as above; the shared state holds `T`s, which are `Send`.
unsafe impl<T: Send> Send for Shared<T> {}

impl<T> Shared<T> {
    /// Moves the item in slot `i` out.
    ///
    /// # Safety
    /// Slot `i` must hold an initialised item that only the caller may take
    /// (it is inside `head..tail` and the caller is the receiver, or the
    /// last half standing); it counts as empty afterwards.
    unsafe fn take(&self, i: usize) -> T {
        // SAFETY: the slot is initialised and exclusively the caller's (the
        // contract), so reading it out once is sound.
        unsafe { (*self.slots[i & self.mask].get()).assume_init_read() }
    }

    /// Takes every item left, once both halves are gone or from the last
    /// half standing.
    fn drain(&self, mut f: impl FnMut(T)) {
        let mut head = self.head.0.load(Ordering::Acquire);
        let tail = self.tail.0.load(Ordering::Acquire);
        while head != tail {
            // SAFETY: the caller is the last half (see `close`): nobody else
            // touches the ring, and `head..tail` holds initialised items.
            f(unsafe { self.take(head) });
            head = head.wrapping_add(1);
            self.head.0.store(head, Ordering::Release);
        }
    }
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        // Both halves are gone: whatever is left is dropped as `T` drops.
        self.drain(drop);
    }
}

/// Makes a ring of at least `capacity` items (rounded up to a power of
/// two, at least 2).
pub fn ring<T: Send>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let cap = capacity.max(2).next_power_of_two();
    let shared = Arc::new(Shared {
        head: Padded(AtomicUsize::new(0)),
        tail: Padded(AtomicUsize::new(0)),
        gone: AtomicU8::new(0),
        finished: AtomicBool::new(false),
        mask: cap - 1,
        slots: (0..cap)
            .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
            .collect(),
    });
    (
        Sender {
            shared: shared.clone(),
            tail: 0,
            head_seen: 0,
            closed: false,
        },
        Receiver {
            shared,
            head: 0,
            tail_seen: 0,
            closed: false,
        },
    )
}

/// The sending half.
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
    /// Our copy of `shared.tail` (we are its only writer).
    tail: usize,
    /// The receiver's head as last read.
    head_seen: usize,
    closed: bool,
}

impl<T> Sender<T> {
    /// Items the ring holds at most.
    pub fn capacity(&self) -> usize {
        self.shared.mask + 1
    }

    /// Moves as many items from the front of `items` into the ring as fit,
    /// in order, and returns how many; the rest stay in `items`.
    pub fn push_from(&mut self, items: &mut Vec<T>) -> usize {
        let cap = self.capacity();
        let mut room = cap - self.tail.wrapping_sub(self.head_seen);
        if room < items.len() {
            self.head_seen = self.shared.head.0.load(Ordering::Acquire);
            room = cap - self.tail.wrapping_sub(self.head_seen);
        }
        let n = room.min(items.len());
        if n == 0 {
            return 0;
        }
        for (k, item) in items.drain(..n).enumerate() {
            let slot = &self.shared.slots[self.tail.wrapping_add(k) & self.shared.mask];
            // SAFETY: the slot lies in `tail..head + cap`, outside the
            // receiver's `head..tail` (the acquire load of `head` above
            // ordered its last read of this slot before us), and we are
            // the only sender: nobody else touches it until we publish it.
            unsafe { (*slot.get()).write(item) };
        }
        self.tail = self.tail.wrapping_add(n);
        self.shared.tail.0.store(self.tail, Ordering::Release);
        n
    }

    /// Says no more items will come (the receiver may then see the ring
    /// end, [`Receiver::is_finished`]); the sender itself stays usable
    /// for closing.
    pub fn finish(&self) {
        self.shared.finished.store(true, Ordering::Release);
    }

    /// Whether the receiver has gone (its items would never be read).
    pub fn receiver_gone(&self) -> bool {
        self.shared.gone.load(Ordering::Acquire) & RECEIVER_GONE != 0
    }

    /// Closes this half. If the receiver is gone already, the items left
    /// in the ring are handed to `f` (to free them); otherwise the
    /// receiver gets them when it closes.
    pub fn close(mut self, f: impl FnMut(T)) {
        self.closed = true;
        self.shared.finished.store(true, Ordering::Release);
        if self.shared.gone.fetch_or(SENDER_GONE, Ordering::AcqRel) & RECEIVER_GONE != 0 {
            self.shared.drain(f);
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if !self.closed {
            self.shared.finished.store(true, Ordering::Release);
            self.shared.gone.fetch_or(SENDER_GONE, Ordering::AcqRel);
        }
    }
}

/// The receiving half.
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
    /// Our copy of `shared.head` (we are its only writer).
    head: usize,
    /// The sender's tail as last read.
    tail_seen: usize,
    closed: bool,
}

impl<T> Receiver<T> {
    /// Moves up to `max` items, oldest first, to the end of `out`; returns
    /// how many.
    pub fn pop_into(&mut self, out: &mut Vec<T>, max: usize) -> usize {
        let mut ready = self.tail_seen.wrapping_sub(self.head);
        if ready < max {
            self.tail_seen = self.shared.tail.0.load(Ordering::Acquire);
            ready = self.tail_seen.wrapping_sub(self.head);
        }
        let n = ready.min(max);
        if n == 0 {
            return 0;
        }
        out.reserve(n);
        for k in 0..n {
            // SAFETY: `head..tail_seen` was published by the sender's
            // release store, which our acquire load saw; we are the only
            // receiver, so each of these slots is ours to take once.
            out.push(unsafe { self.shared.take(self.head.wrapping_add(k)) });
        }
        self.head = self.head.wrapping_add(n);
        self.shared.head.0.store(self.head, Ordering::Release);
        n
    }

    /// Whether the ring looks empty now.
    pub fn is_empty(&self) -> bool {
        self.shared.tail.0.load(Ordering::Acquire) == self.head
    }

    /// Whether the sender has said it sends no more (or is gone). Once
    /// true, what [`Receiver::pop_into`] takes after is the last of it.
    pub fn is_finished(&self) -> bool {
        self.shared.finished.load(Ordering::Acquire)
    }

    /// Closes this half. If the sender is gone already, the items left in
    /// the ring are handed to `f`; otherwise the sender gets them (and any
    /// it still pushes) when it closes.
    pub fn close(mut self, f: impl FnMut(T)) {
        self.closed = true;
        if self.shared.gone.fetch_or(RECEIVER_GONE, Ordering::AcqRel) & SENDER_GONE != 0 {
            self.shared.drain(f);
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        if !self.closed {
            self.shared.gone.fetch_or(RECEIVER_GONE, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_is_a_power_of_two_and_push_stops_when_full() {
        let (mut tx, mut rx) = ring::<u32>(5);
        assert_eq!(tx.capacity(), 8);
        let mut items: Vec<u32> = (0..12).collect();
        assert_eq!(tx.push_from(&mut items), 8);
        assert_eq!(items, vec![8, 9, 10, 11]);
        let mut out = Vec::new();
        assert_eq!(rx.pop_into(&mut out, 3), 3);
        assert_eq!(out, vec![0, 1, 2]);
        assert_eq!(tx.push_from(&mut items), 3);
        assert_eq!(items, vec![11]);
        out.clear();
        assert_eq!(rx.pop_into(&mut out, 100), 8);
        assert_eq!(out, vec![3, 4, 5, 6, 7, 8, 9, 10]);
        assert!(rx.is_empty());
    }

    #[test]
    fn last_half_to_close_gets_the_leftovers() {
        let (mut tx, rx) = ring::<u32>(8);
        tx.push_from(&mut vec![1, 2, 3]);
        let mut got = Vec::new();
        rx.close(|x| got.push(x));
        assert!(got.is_empty(), "the sender is still there");
        assert!(tx.receiver_gone());
        tx.close(|x| got.push(x));
        assert_eq!(got, vec![1, 2, 3]);

        let (mut tx, mut rx) = ring::<u32>(8);
        tx.push_from(&mut vec![4, 5]);
        let mut got = Vec::new();
        tx.close(|x| got.push(x));
        assert!(got.is_empty());
        assert!(rx.is_finished());
        let mut first = Vec::new();
        rx.pop_into(&mut first, 1);
        rx.close(|x| got.push(x));
        assert_eq!((first, got), (vec![4], vec![5]));
    }

    #[test]
    fn items_left_when_both_halves_drop_are_dropped() {
        let item = Arc::new(());
        let (mut tx, rx) = ring::<Arc<()>>(4);
        tx.push_from(&mut vec![item.clone(), item.clone()]);
        assert_eq!(Arc::strong_count(&item), 3);
        drop(tx);
        drop(rx);
        assert_eq!(Arc::strong_count(&item), 1);
    }

    /// Two threads, a small ring that wraps thousands of times: every item
    /// arrives once, in order, and what did not fit is retried.
    #[test]
    fn two_threads_pass_every_item_in_order() {
        const N: u64 = 200_000;
        let (mut tx, mut rx) = ring::<u64>(64);
        let sender = std::thread::spawn(move || {
            let mut next = 0u64;
            let mut batch = Vec::new();
            while next < N || !batch.is_empty() {
                while batch.len() < 37 && next < N {
                    batch.push(next);
                    next += 1;
                }
                if tx.push_from(&mut batch) == 0 {
                    std::hint::spin_loop();
                }
            }
            tx.finish();
        });
        let mut expect = 0u64;
        let mut out = Vec::new();
        loop {
            let finished = rx.is_finished();
            out.clear();
            rx.pop_into(&mut out, 50);
            for &v in &out {
                assert_eq!(v, expect);
                expect += 1;
            }
            if finished && out.is_empty() && rx.is_empty() {
                break;
            }
        }
        sender.join().expect("sender");
        assert_eq!(expect, N);
    }
}
