//! Criterion measurement in TSC cycles, reported per packet, shared by
//! the Criterion benchmarks of this crate.

use criterion::Throughput;
use criterion::measurement::{Measurement, ValueFormatter};
use sluice_graph::clock::cycles;

/// Criterion measurement in TSC cycles.
pub struct Cycles;

struct CyclesFormatter;

impl ValueFormatter for CyclesFormatter {
    fn scale_values(&self, _typical: f64, _values: &mut [f64]) -> &'static str {
        "cycles"
    }
    fn scale_throughputs(&self, _typical: f64, t: &Throughput, values: &mut [f64]) -> &'static str {
        let n = match t {
            Throughput::Elements(n) => *n as f64,
            _ => 1.0,
        };
        for v in values {
            *v /= n;
        }
        "cycles/pkt"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "cycles"
    }
}

impl Measurement for Cycles {
    type Intermediate = u64;
    type Value = u64;
    fn start(&self) -> u64 {
        cycles()
    }
    fn end(&self, i: u64) -> u64 {
        cycles().wrapping_sub(i)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &CyclesFormatter
    }
}
