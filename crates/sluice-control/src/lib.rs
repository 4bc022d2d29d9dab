//! Sluice's control layer: reads a configuration, builds the data plane
//! from it (buffer pool, interfaces, tables, one graph per worker), runs it
//! and reports what it did.
//!
//! A configuration is checked whole before anything starts: a bad file is
//! refused with a message that names the key and its line, and nothing is
//! left half-built.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod api;
pub mod baseline;
pub mod config;
pub mod dataplane;
pub mod doctor;
pub mod edit;
pub mod features;
pub mod metrics;
pub mod running;
pub mod server;
pub mod show;
pub mod state;

pub use config::{Config, ConfigError};
pub use dataplane::{Dataplane, Report};

/// The embedded demo: the packet generator feeding the IPv4 chain.
pub const DEMO_CONFIG: &str = include_str!("demo.toml");
