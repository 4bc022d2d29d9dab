//! Sluice's interfaces.
//!
//! Every driver implements one small trait, [`Driver`]: receive a burst into
//! a vector, transmit a vector. [`InterfaceInput`] and [`InterfaceOutput`]
//! turn any driver into the graph's `<name>-input` and `<name>-output`
//! nodes, which keep the interface counters.
//!
//! Drivers so far:
//! - [`af_xdp`]: a kernel device through AF_XDP sockets whose UMEM is the
//!   buffer pool itself;
//! - [`af_packet`]: any kernel device, through TPACKET_V3 rings;
//! - [`pg`]: the packet generator, realistic streams written into real buffers;
//! - [`pcap`]: replay a capture file in, write one out (Wireshark and tshark
//!   open it);
//! - [`sink`]: a null interface that reads what it checks and frees;
//! - [`memif`]: another process (a container, DPDK, VPP) through memif
//!   shared-memory rings, Sluice as the server;
//! - [`tap`]: the Linux host stack or a container's namespace, through a
//!   TAP device with offloads;
//! - [`vhost`]: virtual machines with the stock virtio-net driver (and
//!   DPDK's `virtio_user`), vhost-user back end, server or client.
//!
//! [`offload`] turns what a Linux host leaves to "the hardware" (partial
//! checksums, 64 KiB TCP segments) into ordinary frames.
//!
//! The kernel-facing drivers share [`sys`], the module with the `unsafe`
//! code: sockets, ring mappings, interface ioctls, network namespaces.
//! The one other `unsafe` is [`af_xdp`] taking back the pool buffers the
//! kernel returns on its rings.
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
#![deny(missing_docs)]

pub mod af_packet;
#[allow(unsafe_code)] // reclaims buffers the kernel hands back
pub mod af_xdp;
pub mod capture;
mod driver;
pub mod memif;
pub mod offload;
pub mod pcap;
pub mod pg;
pub mod sink;
#[allow(unsafe_code)]
pub mod sys;
pub mod tap;
pub mod vhost;

pub use driver::{
    Driver, InterfaceInput, InterfaceOutput, LinkState, LinkStatus, Queues, RxState,
    input_node_name, output_node_name,
};
pub use sys::KernelError;
