//! Packet buffers for Sluice.
//!
//! One pool per process: a single mmap'd region (2 MiB huge pages when the
//! system has them, normal pages otherwise; locked in memory when the memlock
//! limit allows) cut into fixed-size buffers. Each buffer is
//!
//! ```text
//! | header: pool control + Meta (128 B) | headroom (128 B) | data (2048 B) |
//! ```
//!
//! and is named by a `u32` index, so the same region can later back AF_XDP
//! UMEM or memif regions.
//!
//! A [`Packet`] is a move-only handle that only the pool mints. Owning it is
//! the right to touch the bytes: there is never more than one handle per
//! buffer, which Rust's ownership rules check at compile time. A packet goes
//! back to the pool through a [`BufCache`] (per worker, refilled and spilled
//! in batches so the pool's lock is taken once per batch, not per packet).
//!
//! Frames above 2 KiB (jumbo frames up to 9 KiB and beyond) are chains of
//! buffers; the head of the chain is the handle, and freeing it frees the
//! whole chain.
//!
//! The crate also maps the memory of large lookup tables ([`table`]): the
//! same mmap craft, for forwarding tables instead of packets.
//!
//! All `unsafe` code of the crate lives in the [`pool`] and [`table`] modules.
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

pub mod pool;
pub mod table;

pub use pool::{
    Backing, BufCache, BufError, DATA_SIZE, DeviceLayout, HEADROOM, HugePages, Lent, Meta, Packet,
    Pool, PoolConfig, Segments,
};
