//! The interfaces' output nodes as next nodes of a function node that
//! sends straight out of an interface (ARP and ND answers, rewritten
//! packets).

use sluice_graph::iface::{IfIndex, Interfaces};

/// Next nodes for every interface that can transmit.
#[derive(Debug, Clone)]
pub(crate) struct Outputs {
    /// Output node names, to declare after the node's `first` other next
    /// nodes.
    pub names: Vec<String>,
    /// Per interface index: its next index.
    next_of_if: Vec<Option<usize>>,
}

impl Outputs {
    /// The outputs of `interfaces`, numbered from next index `first`.
    pub fn new(interfaces: &Interfaces, first: usize) -> Outputs {
        let mut names = Vec::new();
        let next_of_if = interfaces
            .iter()
            .map(|i| {
                i.output_node.as_ref().map(|n| {
                    names.push(n.clone());
                    first + names.len() - 1
                })
            })
            .collect();
        Outputs { names, next_of_if }
    }

    /// The next index that transmits on `interface`.
    #[inline]
    pub fn next(&self, interface: IfIndex) -> Option<usize> {
        self.next_of_if.get(interface as usize).copied().flatten()
    }

    /// `fixed` next nodes followed by the outputs, for a `NodeSpec`.
    pub fn with<'a>(&'a self, fixed: &[&'a str]) -> Vec<&'a str> {
        let mut v = fixed.to_vec();
        v.extend(self.names.iter().map(String::as_str));
        v
    }
}
