//! IPv4 forwarding: `ip4-input` → `ip4-lookup` → `ip4-rewrite`.

mod fib;
pub mod input;
pub mod lookup;
pub mod rewrite;

pub use fib::{Adjacency, FibError, Ip4Fib, Route, RouteTarget};
pub use input::Ip4Input;
pub use lookup::Ip4Lookup;
pub use rewrite::Ip4Rewrite;
