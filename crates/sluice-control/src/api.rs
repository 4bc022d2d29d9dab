//! The control API: what `sluice ctl` (or any script) asks a running
//! Sluice, and what it answers.
//!
//! One JSON object a line over a Unix socket, each way. A request carries
//! the API version it was written for; within a major version the schema
//! only grows (new requests, new optional fields, new fields in answers),
//! so an older client keeps working against a newer daemon. Unknown fields
//! in a request are refused by name rather than ignored, so a typo is an
//! error, not a silent no-op.

use serde::{Deserialize, Serialize};

/// The API's major version.
pub const VERSION: u32 = 1;

/// A request as it travels: the version and what is asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// The major version the client speaks.
    pub version: u32,
    /// What it asks.
    pub request: Request,
}

/// Everything that can be asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// The daemon's version and API version.
    ShowVersion,
    /// Interfaces: state, MAC, MTU, counters.
    ShowInterface,
    /// Per-node calls, vectors and clocks, per worker.
    ShowRuntime,
    /// The error counters.
    ShowErrors,
    /// The graph as Graphviz DOT.
    ShowGraph,
    /// The neighbour table (ARP and ND).
    ShowNeighbors,
    /// The MAC tables of the bridge domains.
    ShowL2fib,
    /// The buffer pool: capacity and free buffers.
    ShowBuffers,
    /// The routes of a table (0 when not given).
    ShowIpFib {
        /// The table (VRF).
        #[serde(default)]
        table: u32,
    },
    /// Adds (or replaces) a route.
    IpRouteAdd(RouteSpec),
    /// Traces the next `count` packets an input node brings in (on every
    /// worker).
    TraceAdd {
        /// The input node, e.g. `pg0-input`.
        node: String,
        /// How many packets.
        count: u32,
    },
    /// The traced packets, node by node.
    ShowTrace,
    /// Stops tracing and forgets the trace.
    ClearTrace,
    /// Counts node calls, packets, clocks and errors from now on.
    ClearRuntime,
    /// Counts interface packets and bytes from now on.
    ClearInterfaces,
    /// Sets an interface administratively up or down.
    SetInterfaceState {
        /// The interface, by name.
        interface: String,
        /// Up (true) or down.
        up: bool,
    },
    /// Removes a route.
    IpRouteDel {
        /// The prefix, e.g. `10.1.0.0/16`.
        prefix: String,
        /// The table (VRF).
        #[serde(default)]
        table: u32,
    },
    /// The running configuration as TOML, as `sluice run --config` reads.
    ShowRunningConfig,
    /// Bridge domains: ports, BVI, MACs learned.
    ShowBridgeDomain,
    /// Gives an interface an address, or takes it away.
    SetInterfaceAddress {
        /// The interface, by name.
        interface: String,
        /// The address and prefix length, e.g. `10.0.0.1/24`.
        address: String,
        /// Take it away instead.
        #[serde(default)]
        del: bool,
    },
    /// Adds a static neighbour (never aged, never learned over).
    IpNeighborAdd {
        /// The interface it is on.
        interface: String,
        /// Its IP address.
        ip: String,
        /// Its MAC.
        mac: String,
    },
    /// Removes a static neighbour.
    IpNeighborDel {
        /// The interface it is on.
        interface: String,
        /// Its IP address.
        ip: String,
    },
    /// What applying a configuration file would change.
    Diff {
        /// The file's text.
        text: String,
        /// The file's name, for messages.
        #[serde(default)]
        name: Option<String>,
    },
    /// Applies a configuration file: all of it or nothing.
    Apply {
        /// The file's text.
        text: String,
        /// The file's name, for messages.
        #[serde(default)]
        name: Option<String>,
    },
    /// The workers: core, queues and inputs of each.
    ShowThreads,
    /// The access lists: rules, where each stands, packets denied.
    ShowAcl,
    /// The connection tables: sessions and what came and went.
    ShowConntrack,
    /// Per interface, the features enabled on each arc, in order.
    ShowFeatures,
    /// Starts copying packets as interfaces receive and/or send them, for
    /// a pcap file written when the capture stops.
    PcapTrace {
        /// Copy what interfaces receive.
        #[serde(default)]
        rx: bool,
        /// Copy what interfaces send.
        #[serde(default)]
        tx: bool,
        /// How many packets at most (1 to 100,000).
        max: u32,
        /// One interface, by name; every interface when left out.
        #[serde(default)]
        interface: Option<String>,
        /// The pcap file to write (replaced if it exists).
        file: String,
    },
    /// Stops the capture and writes its file.
    PcapTraceOff,
    /// Whether a capture runs, how many packets it holds, and its file.
    ShowPcap,
    /// The intrusion detector: alerts per rule, log lines held back.
    ShowIds,
}

/// A route as a request gives it: one path.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RouteSpec {
    /// The prefix, e.g. `10.1.0.0/16` (host bits clear).
    pub prefix: String,
    /// The table (VRF).
    #[serde(default)]
    pub table: u32,
    /// The outgoing interface, by name.
    #[serde(default)]
    pub interface: Option<String>,
    /// The next hop's address (resolved by ARP/ND).
    #[serde(default)]
    pub via: Option<String>,
    /// The next hop's MAC (a static next hop).
    #[serde(default)]
    pub via_mac: Option<String>,
    /// `drop`, `prohibit` or `unreachable` instead of a next hop.
    #[serde(default)]
    pub action: Option<String>,
}

/// An answer: `ok` and a result, or an error saying what was wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Whether the request was carried out.
    pub ok: bool,
    /// Why not, when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What was asked for, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Reply>,
}

impl Response {
    /// A refusal.
    pub fn error(e: impl Into<String>) -> Response {
        Response {
            ok: false,
            error: Some(e.into()),
            result: None,
        }
    }

    /// A success.
    pub fn ok(r: Reply) -> Response {
        Response {
            ok: true,
            error: None,
            result: Some(r),
        }
    }
}

/// What a request brings back: a table for people (`text`) and the same
/// facts for scripts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reply {
    /// `show version`.
    Version {
        /// Sluice's version.
        sluice: String,
        /// The API's major version.
        api: u32,
    },
    /// `show interface`.
    Interfaces {
        /// The table.
        text: String,
        /// One row an interface.
        rows: Vec<InterfaceRow>,
    },
    /// `show runtime`.
    Runtime {
        /// The table.
        text: String,
        /// One row a node, summed over workers.
        rows: Vec<NodeRow>,
    },
    /// `show errors`.
    Errors {
        /// The table.
        text: String,
        /// One row a counter, summed over workers.
        rows: Vec<ErrorRow>,
    },
    /// `show ip fib`.
    Routes {
        /// The table.
        text: String,
        /// One row a route.
        rows: Vec<RouteRow>,
    },
    /// `show ip neighbors` / `show l2fib`: a table.
    Table {
        /// The table.
        text: String,
    },
    /// `show graph`: Graphviz DOT.
    Graph {
        /// The DOT text.
        text: String,
    },
    /// `show trace`.
    Trace {
        /// The packets, node by node.
        text: String,
        /// One row a node a packet saw.
        rows: Vec<TraceRow>,
    },
    /// `show buffers`.
    Buffers {
        /// The table.
        text: String,
        /// Buffers in the pool.
        capacity: u32,
        /// Buffers on the pool's free list (not counting workers' caches).
        free: u32,
    },
    /// A change was applied.
    Done,
    /// `show running-config`.
    RunningConfig {
        /// TOML.
        text: String,
    },
    /// `diff` and `apply`: the plan (carried out, for `apply`).
    Plan {
        /// One line a step, and a count.
        text: String,
        /// The steps.
        steps: Vec<PlanStep>,
        /// Whether it was carried out.
        applied: bool,
    },
    /// `show bridge-domain`.
    BridgeDomains {
        /// The table.
        text: String,
        /// One row a bridge domain.
        rows: Vec<BridgeRow>,
    },
    /// `show threads`.
    Threads {
        /// The table.
        text: String,
        /// One row a worker.
        rows: Vec<ThreadRow>,
    },
    /// `show acl`.
    Acls {
        /// The lists, for people.
        text: String,
        /// One row a list.
        rows: Vec<AclRow>,
        /// Packets denied per ACL node, summed over workers.
        denied: Vec<ErrorRow>,
    },
    /// `show conntrack`.
    Conntrack {
        /// The table.
        text: String,
        /// One row a worker and address family.
        rows: Vec<ConntrackRow>,
    },
    /// `show ids`.
    Ids {
        /// The rules and counters, for people.
        text: String,
        /// `detect` or `prevent` (empty without `[ids]`).
        mode: String,
        /// One row a rule, in the file's order, counted over every worker
        /// and address family.
        rules: Vec<IdsRuleRow>,
        /// Packets whose payload was scanned.
        scanned: u64,
        /// Alerts raised (a packet matching two rules raises two).
        alerts: u64,
        /// Alert lines written.
        logged: u64,
        /// Alert lines the rate limit held back.
        suppressed: u64,
    },
}

/// One intrusion detection rule and its alerts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdsRuleRow {
    /// Its sid.
    pub sid: u32,
    /// Its message.
    pub msg: String,
    /// Alerts it raised.
    pub alerts: u64,
}

/// One access list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclRow {
    /// Its name.
    pub name: String,
    /// What no rule matching gets: `permit` or `deny`.
    pub default: String,
    /// Its rules in order, one line each.
    pub rules: Vec<String>,
    /// Interfaces it judges received packets of.
    pub inbound: Vec<String>,
    /// Interfaces it judges sent packets of.
    pub outbound: Vec<String>,
}

/// One connection table (a worker's, for one address family).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConntrackRow {
    /// Worker number.
    pub worker: usize,
    /// `ip4` or `ip6`.
    pub family: String,
    /// Sessions it can hold.
    pub capacity: u64,
    /// Sessions now.
    pub sessions: u64,
    /// Sessions made.
    pub created: u64,
    /// Sessions gone at their timeout.
    pub expired: u64,
    /// Embryonic sessions pushed out for new ones.
    pub evicted: u64,
    /// New flows refused for want of room.
    pub refused: u64,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanStep {
    /// `+`, `-` or `~`.
    pub sign: String,
    /// The object and what happens to it.
    pub what: String,
    /// Whether only a restart can make it.
    pub needs_restart: bool,
}

/// One bridge domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeRow {
    /// Its id.
    pub id: u32,
    /// Its ports, by interface name.
    pub ports: Vec<String>,
    /// Its BVI, if any.
    pub bvi: Option<String>,
    /// MACs in its table (learned and static).
    pub macs: usize,
    /// Whether it learns.
    pub learn: bool,
    /// Whether it floods unknown unicast.
    pub flood: bool,
}

/// One worker thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadRow {
    /// Worker number.
    pub worker: usize,
    /// Thread name.
    pub name: String,
    /// The core it is pinned to, if any.
    pub core: Option<usize>,
    /// What it receives from: interface queues, generator shares, handoff.
    pub inputs: Vec<String>,
}

/// One interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceRow {
    /// Name.
    pub name: String,
    /// Index.
    pub index: u32,
    /// Driver kind.
    pub driver: String,
    /// `up`, `down`, `gone`, or empty for interfaces without a link.
    pub state: String,
    /// MAC address.
    pub mac: String,
    /// L3 MTU.
    pub mtu: u16,
    /// Packets received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets dropped on receive.
    pub rx_drops: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets that could not be sent.
    pub tx_errors: u64,
}

/// One node, summed over workers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRow {
    /// Node name.
    pub name: String,
    /// Calls.
    pub calls: u64,
    /// Packets handled.
    pub vectors: u64,
    /// TSC cycles per packet (per call for a node that handled none).
    pub clocks: f64,
}

/// One error counter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorRow {
    /// Node.
    pub node: String,
    /// Counter name.
    pub name: String,
    /// What it counts.
    pub reason: String,
    /// Packets.
    pub count: u64,
}

/// One node's view of one traced packet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceRow {
    /// The worker.
    pub worker: usize,
    /// The packet's trace id on that worker.
    pub id: u32,
    /// The node.
    pub node: String,
    /// Its headers as the node saw them.
    pub decode: String,
}

/// One route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteRow {
    /// Table.
    pub table: u32,
    /// Prefix.
    pub prefix: String,
    /// Its paths, as `show ip fib` words them.
    pub paths: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_read_as_documented() {
        let e: Envelope = serde_json::from_str(
            r#"{"version":1,"request":{"ip-route-add":{"prefix":"10.9.0.0/16","interface":"out0","via":"10.0.0.1"}}}"#,
        )
        .unwrap();
        assert_eq!(
            e.request,
            Request::IpRouteAdd(RouteSpec {
                prefix: "10.9.0.0/16".into(),
                interface: Some("out0".into()),
                via: Some("10.0.0.1".into()),
                ..RouteSpec::default()
            })
        );
        let e: Envelope =
            serde_json::from_str(r#"{"version":1,"request":"show-interface"}"#).unwrap();
        assert_eq!(e.request, Request::ShowInterface);
        // A typo is refused by name.
        let bad = serde_json::from_str::<Envelope>(
            r#"{"version":1,"request":{"ip-route-del":{"prefx":"10.0.0.0/8"}}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(bad.contains("prefx"), "{bad}");
    }

    #[test]
    fn new_requests_leave_out_what_has_a_default() {
        let e: Envelope = serde_json::from_str(
            r#"{"version":1,"request":{"set-interface-address":{"interface":"s0","address":"10.0.0.1/24"}}}"#,
        )
        .unwrap();
        assert_eq!(
            e.request,
            Request::SetInterfaceAddress {
                interface: "s0".into(),
                address: "10.0.0.1/24".into(),
                del: false
            }
        );
        let e: Envelope =
            serde_json::from_str(r##"{"version":1,"request":{"apply":{"text":"# empty"}}}"##)
                .unwrap();
        assert_eq!(
            e.request,
            Request::Apply {
                text: "# empty".into(),
                name: None
            }
        );
        let e: Envelope =
            serde_json::from_str(r#"{"version":1,"request":"show-running-config"}"#).unwrap();
        assert_eq!(e.request, Request::ShowRunningConfig);
    }
}
