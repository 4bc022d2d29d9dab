//! `sluice ctl`: the words an operator types, turned into API requests to
//! a running Sluice, and its answers printed as tables (or JSON).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use sluice_control::api::{self, Envelope, Reply, Request, Response, RouteSpec};

/// Turns the words of a command into a request.
pub fn parse(words: &[String]) -> anyhow::Result<Request> {
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    Ok(match w.as_slice() {
        ["show", "version"] => Request::ShowVersion,
        ["show", "interface" | "interfaces" | "int"] => Request::ShowInterface,
        ["show", "runtime" | "run"] => Request::ShowRuntime,
        ["show", "errors" | "error"] => Request::ShowErrors,
        ["show", "graph"] => Request::ShowGraph,
        ["show", "ip" | "ip6", "neighbors" | "neighbor" | "neigh"] => Request::ShowNeighbors,
        ["show", "l2fib"] => Request::ShowL2fib,
        ["show", "bridge-domain" | "bridge"] => Request::ShowBridgeDomain,
        ["show", "running-config" | "running" | "config"] => Request::ShowRunningConfig,
        ["set", "interface", "ip", "address", "del", name, address]
        | ["set", "interface", "ip", "address", name, address, "del"] => {
            Request::SetInterfaceAddress {
                interface: name.to_string(),
                address: address.to_string(),
                del: true,
            }
        }
        ["set", "interface", "ip", "address", name, address] => Request::SetInterfaceAddress {
            interface: name.to_string(),
            address: address.to_string(),
            del: false,
        },
        ["ip", "neighbor" | "neigh", "add", name, ip, mac]
        | [
            "ip",
            "neighbor" | "neigh",
            "add",
            ip,
            "lladdr",
            mac,
            "dev",
            name,
        ] => Request::IpNeighborAdd {
            interface: name.to_string(),
            ip: ip.to_string(),
            mac: mac.to_string(),
        },
        ["ip", "neighbor" | "neigh", "del", name, ip]
        | ["ip", "neighbor" | "neigh", "del", ip, "dev", name] => Request::IpNeighborDel {
            interface: name.to_string(),
            ip: ip.to_string(),
        },
        ["diff", file] => Request::Diff {
            text: read(file)?,
            name: Some(file.to_string()),
        },
        ["apply", file] => Request::Apply {
            text: read(file)?,
            name: Some(file.to_string()),
        },
        ["show", "trace"] => Request::ShowTrace,
        ["pcap", "trace", "off"] => Request::PcapTraceOff,
        ["show", "pcap"] => Request::ShowPcap,
        ["pcap", "trace", rest @ ..] => pcap_trace(rest)?,
        ["clear", "trace"] => Request::ClearTrace,
        ["clear", "runtime" | "errors"] => Request::ClearRuntime,
        ["clear", "interfaces" | "interface"] => Request::ClearInterfaces,
        ["trace", "add", node, n] => Request::TraceAdd {
            node: node.to_string(),
            count: number(n, "count")?,
        },
        ["show", "buffers"] => Request::ShowBuffers,
        ["show", "threads" | "thread"] => Request::ShowThreads,
        ["show", "acl" | "acls"] => Request::ShowAcl,
        ["show", "conntrack" | "sessions"] => Request::ShowConntrack,
        ["show", "ids"] => Request::ShowIds,
        ["show", "features" | "feature"] => Request::ShowFeatures,
        ["show", "ip" | "ip6", "fib"] => Request::ShowIpFib { table: 0 },
        ["show", "ip" | "ip6", "fib", "table", t] => Request::ShowIpFib {
            table: number(t, "table")?,
        },
        ["ip", "route", "add", prefix, rest @ ..] => Request::IpRouteAdd(route(prefix, rest)?),
        ["set", "interface", "state", name, state @ ("up" | "down")] => {
            Request::SetInterfaceState {
                interface: name.to_string(),
                up: *state == "up",
            }
        }
        ["ip", "route", "del", prefix] => Request::IpRouteDel {
            prefix: prefix.to_string(),
            table: 0,
        },
        ["ip", "route", "del", prefix, "table", t] => Request::IpRouteDel {
            prefix: prefix.to_string(),
            table: number(t, "table")?,
        },
        _ => bail!(
            "unknown command `{}`: try {}",
            w.join(" "),
            crate::complete::help()
        ),
    })
}

/// `pcap trace [rx] [tx] max N [intfc NAME|any] file F`, in VPP's words
/// and any order. The file is made absolute here: the daemon's working
/// directory is not the operator's.
fn pcap_trace(words: &[&str]) -> anyhow::Result<Request> {
    let (mut rx, mut tx, mut max, mut interface, mut file) = (false, false, None, None, None);
    let mut w = words.iter();
    while let Some(word) = w.next() {
        match *word {
            "rx" => rx = true,
            "tx" => tx = true,
            "max" => max = Some(number(w.next().copied().unwrap_or(""), "max")?),
            "intfc" | "interface" => {
                interface = w.next().map(|n| n.to_string());
                if interface.is_none() {
                    bail!("pcap trace: intfc needs an interface name (or any)");
                }
            }
            "file" => {
                let f = w.next().context("pcap trace: file needs a path")?;
                file = Some(std::path::absolute(f)?.display().to_string());
            }
            other => bail!("pcap trace: `{other}`: expected rx, tx, max N, intfc NAME or file F"),
        }
    }
    Ok(Request::PcapTrace {
        rx,
        tx,
        max: max.context("pcap trace: say how many packets (max N)")?,
        interface,
        file: file.context("pcap trace: say where to write them (file F)")?,
    })
}

/// A configuration file for `diff` and `apply`: read here, checked by
/// the daemon.
fn read(file: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))
}

fn number(s: &str, what: &str) -> anyhow::Result<u32> {
    s.parse()
        .with_context(|| format!("{what} `{s}` is not a number"))
}

fn route(prefix: &str, rest: &[&str]) -> anyhow::Result<RouteSpec> {
    let mut spec = RouteSpec {
        prefix: prefix.to_string(),
        ..RouteSpec::default()
    };
    let mut it = rest.iter();
    while let Some(&word) = it.next() {
        let mut value = || {
            it.next()
                .map(|v| v.to_string())
                .with_context(|| format!("`{word}` needs a value"))
        };
        match word {
            "via" => spec.via = Some(value()?),
            "via-mac" => spec.via_mac = Some(value()?),
            "dev" | "interface" => spec.interface = Some(value()?),
            "table" => spec.table = number(&value()?, "table")?,
            "drop" | "prohibit" | "unreachable" => spec.action = Some(word.to_string()),
            other => bail!("`{other}`: expected via, via-mac, dev, table or an action"),
        }
    }
    Ok(spec)
}

/// Sends one request and returns the answer.
pub fn ask(socket: &Path, request: Request) -> anyhow::Result<Response> {
    let mut stream = UnixStream::connect(socket).with_context(|| {
        format!(
            "cannot reach sluice at {} (is it running? --socket)",
            socket.display()
        )
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut line = serde_json::to_vec(&Envelope {
        version: api::VERSION,
        request,
    })?;
    line.push(b'\n');
    stream.write_all(&line)?;
    let mut answer = String::new();
    BufReader::new(&stream).read_line(&mut answer)?;
    serde_json::from_str(&answer).with_context(|| format!("bad answer from sluice: {answer:?}"))
}

/// `sluice ctl`: exit 0 when done, 1 when refused (the reason on stderr),
/// 2 when the command or the connection is at fault. Without words, a
/// prompt.
pub fn run(socket: &Path, json: bool, words: &[String]) -> anyhow::Result<ExitCode> {
    if words.is_empty() {
        return interactive(socket, json);
    }
    let request = parse(words)?;
    let response = ask(socket, request)?;
    show(&response, json)?;
    Ok(if response.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// One command a line until `quit` or end of input; a bad command or a
/// refusal is said and the prompt comes back. `history` lists what was
/// typed; `!N` runs line N again. On a terminal, Tab completes commands
/// and the running interfaces' names, and the arrows recall lines.
fn interactive(socket: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let mut history: Vec<String> = Vec::new();
    let mut prompt = Prompt::new(socket)?;
    while let Some(line) = prompt.next_line()? {
        let mut command = line.trim().to_string();
        if let Some(n) = command.strip_prefix('!') {
            match n
                .parse::<usize>()
                .ok()
                .and_then(|n| history.get(n.wrapping_sub(1)))
            {
                Some(h) => command = h.clone(),
                None => {
                    eprintln!("sluice ctl: no history line {n}");
                    continue;
                }
            }
        }
        match command.as_str() {
            "" => continue,
            "quit" | "exit" => break,
            "history" => {
                for (i, h) in history.iter().enumerate() {
                    println!("{:>4}  {h}", i + 1);
                }
                continue;
            }
            _ => {}
        }
        history.push(command.clone());
        prompt.remember(&command);
        let words: Vec<String> = command.split_whitespace().map(String::from).collect();
        match parse(&words).and_then(|r| ask(socket, r)) {
            Ok(response) => show(&response, json)?,
            Err(e) => eprintln!("sluice ctl: {e:#}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Where interactive lines come from: a line editor on a terminal, plain
/// lines from a pipe (scripts, tests).
enum Prompt {
    Terminal(Box<rustyline::Editor<Completion, rustyline::history::DefaultHistory>>),
    Pipe,
}

impl Prompt {
    fn new(socket: &Path) -> anyhow::Result<Prompt> {
        use std::io::IsTerminal;
        if !std::io::stdin().is_terminal() {
            return Ok(Prompt::Pipe);
        }
        let mut editor = rustyline::Editor::new().context("cannot set up the terminal")?;
        editor.set_helper(Some(Completion {
            names: live_names(socket),
        }));
        Ok(Prompt::Terminal(Box::new(editor)))
    }

    /// The next line, or `None` at the end of input.
    fn next_line(&mut self) -> anyhow::Result<Option<String>> {
        use rustyline::error::ReadlineError;
        match self {
            Prompt::Pipe => {
                let mut line = String::new();
                Ok((std::io::stdin().read_line(&mut line)? > 0).then_some(line))
            }
            Prompt::Terminal(editor) => loop {
                match editor.readline("sluice# ") {
                    Ok(line) => return Ok(Some(line)),
                    // Ctrl-C drops the line being typed, as in a shell.
                    Err(ReadlineError::Interrupted) => continue,
                    Err(ReadlineError::Eof) => return Ok(None),
                    Err(e) => return Err(e.into()),
                }
            },
        }
    }

    fn remember(&mut self, line: &str) {
        if let Prompt::Terminal(editor) = self {
            let _ = editor.add_history_entry(line);
        }
    }
}

/// The interface and input node names of the running Sluice, for Tab
/// (none if it cannot be asked: commands still complete).
fn live_names(socket: &Path) -> crate::complete::Names {
    let interfaces: Vec<String> = match ask(socket, Request::ShowInterface) {
        Ok(Response {
            result: Some(Reply::Interfaces { rows, .. }),
            ..
        }) => rows.into_iter().map(|r| r.name).collect(),
        _ => Vec::new(),
    };
    let nodes = interfaces.iter().map(|i| format!("{i}-input")).collect();
    crate::complete::Names { interfaces, nodes }
}

/// Tab completion over [`crate::complete::COMMANDS`].
struct Completion {
    names: crate::complete::Names,
}

impl rustyline::completion::Completer for Completion {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let head = line.get(..pos).unwrap_or(line);
        let start = head.rfind(char::is_whitespace).map_or(0, |i| i + 1);
        Ok((start, crate::complete::complete(head, &self.names)))
    }
}

impl rustyline::hint::Hinter for Completion {
    type Hint = String;
}
impl rustyline::highlight::Highlighter for Completion {}
impl rustyline::validate::Validator for Completion {}
impl rustyline::Helper for Completion {}

/// Prints an answer: its table, the refusal on stderr, or JSON.
fn show(response: &Response, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(&response)?);
    } else if let Some(e) = &response.error {
        eprintln!("sluice ctl: {e}");
    } else if let Some(r) = &response.result {
        match r {
            Reply::Version { sluice, api } => println!("sluice {sluice}, control API {api}"),
            Reply::Interfaces { text, .. }
            | Reply::Runtime { text, .. }
            | Reply::Errors { text, .. }
            | Reply::Routes { text, .. }
            | Reply::Graph { text }
            | Reply::Table { text }
            | Reply::Trace { text, .. }
            | Reply::Buffers { text, .. }
            | Reply::RunningConfig { text }
            | Reply::Plan { text, .. }
            | Reply::BridgeDomains { text, .. }
            | Reply::Threads { text, .. }
            | Reply::Acls { text, .. }
            | Reply::Conntrack { text, .. }
            | Reply::Ids { text, .. } => print!("{text}"),
            Reply::Done => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn commands_become_requests() {
        assert_eq!(parse(&words("show int")).unwrap(), Request::ShowInterface);
        assert_eq!(
            parse(&words(
                "ip route add 10.9.0.0/16 via 10.0.0.1 dev out0 table 2"
            ))
            .unwrap(),
            Request::IpRouteAdd(RouteSpec {
                prefix: "10.9.0.0/16".into(),
                table: 2,
                interface: Some("out0".into()),
                via: Some("10.0.0.1".into()),
                ..RouteSpec::default()
            })
        );
        assert!(parse(&words("ip route add 10.9.0.0/16 via")).is_err());
        assert!(parse(&words("show bogus")).is_err());
        assert!(parse(&words("ip route del 10.0.0.0/8 table x")).is_err());
        for (said, del) in [
            ("set interface ip address sink0 10.0.0.1/24", false),
            ("set interface ip address sink0 10.0.0.1/24 del", true),
            ("set interface ip address del sink0 10.0.0.1/24", true),
        ] {
            assert_eq!(
                parse(&words(said)).unwrap(),
                Request::SetInterfaceAddress {
                    interface: "sink0".into(),
                    address: "10.0.0.1/24".into(),
                    del
                },
                "{said}"
            );
        }
        let add = Request::IpNeighborAdd {
            interface: "s0".into(),
            ip: "10.0.0.5".into(),
            mac: "02:00:00:00:00:05".into(),
        };
        assert_eq!(
            parse(&words("ip neighbor add s0 10.0.0.5 02:00:00:00:00:05")).unwrap(),
            add
        );
        assert_eq!(
            parse(&words(
                "ip neigh add 10.0.0.5 lladdr 02:00:00:00:00:05 dev s0"
            ))
            .unwrap(),
            add
        );
        let e = parse(&words("apply /nonexistent/x.toml")).unwrap_err();
        assert!(format!("{e:#}").contains("cannot read /nonexistent/x.toml"));
    }
}
