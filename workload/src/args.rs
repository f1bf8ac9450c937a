//! Command-line parsing shared by every platform (no_std: works on a list of
//! `&str`, from `argv` on Linux or the boot command line on the tiny guest).

use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// One probe the workload can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// The boot marker (always printed first; naming it is allowed).
    Ready,
    /// Deterministic SHA-256 compute kernel.
    Cpu,
    /// First-touch cost and STREAM copy/triad bandwidth.
    Mem,
    /// Round trip through the cheapest kernel entry.
    Syscall,
    /// Sequential, random and `fsync` block I/O.
    Io,
    /// Sleeps so the host can measure idle memory.
    Idle,
    /// TCP round trips and stream throughput against a peer outside the
    /// isolation (not part of `all`: it needs the peer).
    Net,
}

impl Probe {
    /// What `all` expands to, in run order (after `ready`).
    pub const ALL: [Probe; 5] = [
        Probe::Cpu,
        Probe::Mem,
        Probe::Syscall,
        Probe::Io,
        Probe::Idle,
    ];

    /// The probe's name as written on the command line and in result lines.
    pub fn name(self) -> &'static str {
        match self {
            Probe::Ready => "ready",
            Probe::Cpu => "cpu",
            Probe::Mem => "mem",
            Probe::Syscall => "syscall",
            Probe::Io => "io",
            Probe::Idle => "idle",
            Probe::Net => "net",
        }
    }

    fn from_name(name: &str) -> Option<Probe> {
        [
            Probe::Ready,
            Probe::Cpu,
            Probe::Mem,
            Probe::Syscall,
            Probe::Io,
            Probe::Idle,
            Probe::Net,
        ]
        .into_iter()
        .find(|p| p.name() == name)
    }
}

/// Everything a run needs: which probes, and their parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Probes to run, in order, without duplicates and without `ready`
    /// (which always runs first).
    pub probes: Vec<Probe>,
    /// Repetitions of every measurement (`--reps`).
    pub reps: u32,
    /// Bytes of the buffer the `cpu` probe hashes per round (`--cpu-size`).
    pub cpu_size: u64,
    /// Rounds of hashing per `cpu` sample (`--cpu-rounds`).
    pub cpu_rounds: u32,
    /// Bytes touched page by page by the `mem` first-touch test (`--mem-size`).
    pub mem_size: u64,
    /// Bytes of each of the three STREAM arrays (`--stream-size`).
    pub stream_size: u64,
    /// Kernel entries per `syscall` sample (`--syscall-iters`).
    pub syscall_iters: u32,
    /// Bytes the `io` probe writes and reads (`--io-size`, a multiple of 1 MiB).
    pub io_size: u64,
    /// Where the `io` probe writes (`--io-target`); platform default if `None`.
    pub io_target: Option<String>,
    /// Random 4 KiB reads per `io` sample (`--io-rand-ops`).
    pub io_rand_ops: u32,
    /// `fsync` latency measurements per repetition (`--fsync-ops`).
    pub fsync_ops: u32,
    /// Milliseconds the `idle` probe waits (`--idle-ms`).
    pub idle_ms: u64,
    /// Where the `net` probe measures (`--net-dial`, `--net-accept`), in order.
    pub net_targets: Vec<NetTarget>,
    /// Timed 1-byte round trips per `net` repetition (`--net-round-trips`).
    pub net_round_trips: u32,
    /// Bytes sent per `net` stream repetition (`--net-stream-size`).
    pub net_stream_size: u64,
}

/// One peer the `net` probe measures against, and the path it is reached by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetTarget {
    /// Name of the path, reported as the result's `kind` (e.g. `loopback`,
    /// `veth`, `bridge+nat`, `virtio-net+tap`).
    pub path: String,
    /// How the connection is made.
    pub endpoint: NetEndpoint,
}

/// Which side opens the `net` probe's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetEndpoint {
    /// The probe connects to the peer at this address.
    Dial(core::net::SocketAddr),
    /// The probe listens on this port and the peer connects in (e.g. through
    /// a published, DNATed port).
    Accept(u16),
}

impl NetTarget {
    /// Parses `PATH=ADDR:PORT` (dial) or, with `accept`, `PATH=PORT`.
    pub fn parse(text: &str, accept: bool) -> Result<NetTarget, &'static str> {
        let (path, rest) = text.split_once('=').ok_or(if accept {
            "expected PATH=PORT, e.g. bridge+nat=7000"
        } else {
            "expected PATH=ADDR:PORT, e.g. loopback=127.0.0.1:7000"
        })?;
        let path_ok = (1..=24).contains(&path.len())
            && path
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-._".contains(&b));
        if !path_ok {
            return Err("the path name must be 1-24 characters of a-z 0-9 + - . _");
        }
        let endpoint = if accept {
            match rest.parse::<u16>() {
                Ok(port) if port != 0 => NetEndpoint::Accept(port),
                _ => return Err("the port must be a number from 1 to 65535"),
            }
        } else {
            match rest.parse::<core::net::SocketAddr>() {
                Ok(a) if a.port() != 0 => NetEndpoint::Dial(a),
                _ => {
                    return Err("expected an IP address and a non-zero port, e.g. 10.200.0.1:7000");
                }
            }
        };
        Ok(NetTarget {
            path: path.to_string(),
            endpoint,
        })
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            probes: Vec::new(),
            reps: 5,
            cpu_size: MIB,
            cpu_rounds: 16,
            mem_size: 32 * MIB,
            stream_size: 16 * MIB,
            syscall_iters: 20_000,
            io_size: 64 * MIB,
            io_target: None,
            io_rand_ops: 1024,
            fsync_ops: 16,
            idle_ms: 500,
            net_targets: Vec::new(),
            net_round_trips: 2000,
            net_stream_size: 32 * MIB,
        }
    }
}

impl Config {
    /// The command line that [`parse`] turns back into this configuration:
    /// the probes (`ready` alone when there are none), then every option
    /// that differs from its default. The one place a typed configuration
    /// becomes the argv of a child process or a guest's command line.
    pub fn to_args(&self) -> Vec<String> {
        let mut out: Vec<String> = if self.probes.is_empty() {
            alloc::vec![Probe::Ready.name().to_string()]
        } else {
            self.probes.iter().map(|p| p.name().to_string()).collect()
        };
        out.extend(self.option_args());
        out
    }

    /// The options of [`Config::to_args`] alone: every one that differs
    /// from its default, in the order of [`USAGE`].
    pub fn option_args(&self) -> Vec<String> {
        let mut out = Vec::new();
        let d = Config::default();
        let mut opt = |name: &str, value: String| {
            out.push(alloc::format!("--{name}"));
            out.push(value);
        };
        let num = |n: u64| alloc::format!("{n}");
        if self.reps != d.reps {
            opt("reps", num(self.reps.into()));
        }
        if self.cpu_size != d.cpu_size {
            opt("cpu-size", format_size(self.cpu_size));
        }
        if self.cpu_rounds != d.cpu_rounds {
            opt("cpu-rounds", num(self.cpu_rounds.into()));
        }
        if self.mem_size != d.mem_size {
            opt("mem-size", format_size(self.mem_size));
        }
        if self.stream_size != d.stream_size {
            opt("stream-size", format_size(self.stream_size));
        }
        if self.syscall_iters != d.syscall_iters {
            opt("syscall-iters", num(self.syscall_iters.into()));
        }
        if self.io_size != d.io_size {
            opt("io-size", format_size(self.io_size));
        }
        if let Some(t) = &self.io_target {
            opt("io-target", t.clone());
        }
        if self.io_rand_ops != d.io_rand_ops {
            opt("io-rand-ops", num(self.io_rand_ops.into()));
        }
        if self.fsync_ops != d.fsync_ops {
            opt("fsync-ops", num(self.fsync_ops.into()));
        }
        if self.idle_ms != d.idle_ms {
            opt("idle-ms", num(self.idle_ms));
        }
        for t in &self.net_targets {
            match t.endpoint {
                NetEndpoint::Dial(addr) => opt("net-dial", alloc::format!("{}={addr}", t.path)),
                NetEndpoint::Accept(port) => opt("net-accept", alloc::format!("{}={port}", t.path)),
            }
        }
        if self.net_round_trips != d.net_round_trips {
            opt("net-round-trips", num(self.net_round_trips.into()));
        }
        if self.net_stream_size != d.net_stream_size {
            opt("net-stream-size", format_size(self.net_stream_size));
        }
        out
    }

    /// Parses a probe command line into a configuration; `--help` is refused
    /// as an unknown option here, since a configuration has no help to print.
    pub fn from_args<'a, I>(args: I) -> Result<Config, ArgError>
    where
        I: IntoIterator<Item = &'a str>,
    {
        match parse(args)? {
            Command::Run(cfg) => Ok(cfg),
            Command::Help => Err(ArgError::UnknownOption("--help".to_string())),
        }
    }
}

/// A size as [`parse_size`] reads it: in the largest binary unit that
/// divides it exactly.
fn format_size(bytes: u64) -> String {
    match bytes {
        0 => "0".to_string(),
        b if b % GIB == 0 => alloc::format!("{}G", b / GIB),
        b if b % MIB == 0 => alloc::format!("{}M", b / MIB),
        b if b % KIB == 0 => alloc::format!("{}K", b / KIB),
        b => alloc::format!("{b}"),
    }
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run probes.
    Run(Config),
    /// Print [`USAGE`] and exit successfully.
    Help,
}

/// Usage text for `--help`.
pub const USAGE: &str = "\
usage: isolab-workload PROBE... [OPTIONS]
probes: ready cpu mem syscall io idle all net   (ready is always printed first;
        all is cpu mem syscall io idle: net needs a peer)
options (sizes take K, M, G suffixes, binary):
  --reps N            repetitions of every measurement (default 5)
  --cpu-size SIZE     buffer hashed per round by cpu (default 1M)
  --cpu-rounds N      hashing rounds per cpu sample (default 16)
  --mem-size SIZE     bytes touched page by page by mem (default 32M)
  --stream-size SIZE  bytes of each of the 3 STREAM arrays (default 16M)
  --syscall-iters N   kernel entries per syscall sample (default 20000)
  --io-size SIZE      bytes written and read by io, multiple of 1M (default 64M)
  --io-target PATH    file, directory or block device for io (default: temp dir)
  --io-rand-ops N     random 4K reads per io sample (default 1024)
  --fsync-ops N       fsync latency measurements per repetition (default 16)
  --idle-ms N         milliseconds idle waits (default 500)
  --net-dial PATH=ADDR:PORT   net: connect to a peer there; PATH names the route
                      (loopback, veth, ...), reported as the kind (repeatable)
  --net-accept PATH=PORT      net: listen on PORT, the peer connects in (repeatable)
  --net-round-trips N timed 1-byte round trips per net repetition (default 2000)
  --net-stream-size SIZE  bytes streamed per net repetition (default 32M)
";

/// A command line the workload cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgError {
    /// A word that is neither a probe nor an option.
    #[error("unknown probe {0:?} (probes: ready cpu mem syscall io idle all net)")]
    UnknownProbe(String),
    /// An option this program does not have.
    #[error("unknown option {0:?} (see --help)")]
    UnknownOption(String),
    /// An option given without its value.
    #[error("option {0} needs a value")]
    MissingValue(String),
    /// A count that is not a whole number in range.
    #[error("option {option}: {value:?} is not a whole number between {min} and {max}")]
    BadNumber {
        /// The option.
        option: String,
        /// What was given.
        value: String,
        /// Smallest accepted value.
        min: u64,
        /// Largest accepted value.
        max: u64,
    },
    /// A size that does not parse or does not fit the probe.
    #[error("option {option}: bad size {value:?}: {reason}")]
    BadSize {
        /// The option.
        option: String,
        /// What was given.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A `net` target that does not parse.
    #[error("option {option}: bad target {value:?}: {reason}")]
    BadTarget {
        /// The option.
        option: String,
        /// What was given.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// No probe named.
    #[error("no probe given (probes: ready cpu mem syscall io idle all net)")]
    NoProbes,
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;
/// Upper bound for every size option: nothing this workload does needs more,
/// and it keeps arithmetic on sizes far from overflow.
const MAX_SIZE: u64 = 1024 * GIB;

/// Parses a size such as `4096`, `64K`, `64M`, `1G`, `64MiB` (binary units).
pub fn parse_size(text: &str) -> Result<u64, &'static str> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, suffix) = t.split_at(split);
    if digits.is_empty() {
        return Err("expected a number with an optional K, M or G suffix");
    }
    let n: u64 = digits.parse().map_err(|_| "number too large")?;
    let mult = match suffix {
        "" | "B" => 1,
        "K" | "k" | "KiB" | "KB" => KIB,
        "M" | "m" | "MiB" | "MB" => MIB,
        "G" | "g" | "GiB" | "GB" => GIB,
        _ => return Err("unknown suffix (use K, M or G)"),
    };
    let bytes = n.checked_mul(mult).ok_or("number too large")?;
    if bytes > MAX_SIZE {
        return Err("larger than 1 TiB");
    }
    Ok(bytes)
}

/// Parses the probe list and options. `args` excludes the program name.
pub fn parse<'a, I>(args: I) -> Result<Command, ArgError>
where
    I: IntoIterator<Item = &'a str>,
{
    let mut cfg = Config::default();
    let mut named_ready = false;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        if arg == "--help" || arg == "-h" {
            return Ok(Command::Help);
        }
        if let Some(opt) = arg.strip_prefix("--") {
            // Both `--opt value` and `--opt=value`.
            let (name, inline) = match opt.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (opt, None),
            };
            let option = alloc::format!("--{name}");
            if !OPTIONS.contains(&name) {
                return Err(ArgError::UnknownOption(option));
            }
            let value = match inline {
                Some(v) => v,
                None => it
                    .next()
                    .ok_or_else(|| ArgError::MissingValue(option.clone()))?,
            };
            set_option(&mut cfg, name, &option, value)?;
        } else if arg == "all" {
            for p in Probe::ALL {
                add_probe(&mut cfg.probes, p);
            }
        } else if !arg.is_empty() {
            match Probe::from_name(arg) {
                Some(Probe::Ready) => named_ready = true,
                Some(p) => add_probe(&mut cfg.probes, p),
                None => return Err(ArgError::UnknownProbe(arg.to_string())),
            }
        }
    }
    if cfg.probes.is_empty() && !named_ready {
        return Err(ArgError::NoProbes);
    }
    Ok(Command::Run(cfg))
}

fn add_probe(list: &mut Vec<Probe>, p: Probe) {
    if !list.contains(&p) {
        list.push(p);
    }
}

const OPTIONS: [&str; 15] = [
    "reps",
    "cpu-size",
    "cpu-rounds",
    "mem-size",
    "stream-size",
    "syscall-iters",
    "io-size",
    "io-target",
    "io-rand-ops",
    "fsync-ops",
    "idle-ms",
    "net-dial",
    "net-accept",
    "net-round-trips",
    "net-stream-size",
];

fn set_option(cfg: &mut Config, name: &str, option: &str, value: &str) -> Result<(), ArgError> {
    let count = |min: u64, max: u64| -> Result<u64, ArgError> {
        value
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| ArgError::BadNumber {
                option: option.to_string(),
                value: value.to_string(),
                min,
                max,
            })
    };
    let size = |min: u64, multiple: u64, reason: &'static str| -> Result<u64, ArgError> {
        let bad = |reason| ArgError::BadSize {
            option: option.to_string(),
            value: value.to_string(),
            reason,
        };
        let n = parse_size(value).map_err(bad)?;
        if n < min || n % multiple != 0 {
            return Err(bad(reason));
        }
        Ok(n)
    };
    match name {
        "reps" => cfg.reps = count(1, 10_000)? as u32,
        "cpu-size" => cfg.cpu_size = size(1, 1, "must be at least 1 byte")?,
        "cpu-rounds" => cfg.cpu_rounds = count(1, 1_000_000)? as u32,
        "mem-size" => cfg.mem_size = size(4 * KIB, 4 * KIB, "must be a non-zero multiple of 4K")?,
        "stream-size" => {
            cfg.stream_size = size(4 * KIB, 4 * KIB, "must be a non-zero multiple of 4K")?
        }
        "syscall-iters" => cfg.syscall_iters = count(1, 1_000_000_000)? as u32,
        "io-size" => cfg.io_size = size(MIB, MIB, "must be a non-zero multiple of 1M")?,
        "io-target" => {
            if value.is_empty() {
                return Err(ArgError::MissingValue(option.to_string()));
            }
            cfg.io_target = Some(value.to_string());
        }
        "io-rand-ops" => cfg.io_rand_ops = count(1, 100_000_000)? as u32,
        "fsync-ops" => cfg.fsync_ops = count(1, 1_000_000)? as u32,
        "idle-ms" => cfg.idle_ms = count(0, 86_400_000)?,
        "net-dial" | "net-accept" => {
            let t = NetTarget::parse(value, name == "net-accept").map_err(|reason| {
                ArgError::BadTarget {
                    option: option.to_string(),
                    value: value.to_string(),
                    reason,
                }
            })?;
            if cfg.net_targets.len() >= 8 {
                return Err(ArgError::BadTarget {
                    option: option.to_string(),
                    value: value.to_string(),
                    reason: "at most 8 net targets",
                });
            }
            cfg.net_targets.push(t);
        }
        "net-round-trips" => cfg.net_round_trips = count(1, 10_000_000)? as u32,
        "net-stream-size" => cfg.net_stream_size = size(64 * KIB, 1, "must be at least 64K")?,
        _ => return Err(ArgError::UnknownOption(option.to_string())),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn run(args: &[&str]) -> Config {
        match parse(args.iter().copied()).unwrap() {
            Command::Run(c) => c,
            Command::Help => panic!("unexpected help"),
        }
    }

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(64 * 1024));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert!(parse_size("M").is_err());
        assert!(parse_size("12X").is_err());
        assert!(parse_size("99999999999999999999").is_err());
        assert!(parse_size("2048G").is_err());
    }

    #[test]
    fn all_expands_in_fixed_order_without_duplicates() {
        let c = run(&["syscall", "all", "cpu"]);
        assert_eq!(
            c.probes,
            [
                Probe::Syscall,
                Probe::Cpu,
                Probe::Mem,
                Probe::Io,
                Probe::Idle
            ]
        );
    }

    #[test]
    fn options_take_separate_or_inline_values() {
        let c = run(&[
            "io",
            "--io-size",
            "8M",
            "--reps=3",
            "--io-target",
            "/x",
            "--idle-ms=7",
        ]);
        assert_eq!(c.io_size, 8 << 20);
        assert_eq!(c.reps, 3);
        assert_eq!(c.io_target.as_deref(), Some("/x"));
        assert_eq!(c.idle_ms, 7);
    }

    #[test]
    fn net_targets_parse_in_order_and_bad_ones_are_named() {
        let c = run(&[
            "net",
            "--net-dial",
            "veth=10.200.0.1:7000",
            "--net-accept=bridge+nat=7001",
            "--net-round-trips",
            "10",
            "--net-stream-size",
            "1M",
        ]);
        assert_eq!(c.probes, [Probe::Net]);
        assert_eq!(c.net_targets.len(), 2);
        assert_eq!(c.net_targets[0].path, "veth");
        assert_eq!(
            c.net_targets[0].endpoint,
            NetEndpoint::Dial("10.200.0.1:7000".parse().unwrap())
        );
        assert_eq!(c.net_targets[1].endpoint, NetEndpoint::Accept(7001));
        assert_eq!((c.net_round_trips, c.net_stream_size), (10, 1 << 20));
        for bad in [
            "10.0.0.1:7",
            "x=10.0.0.1",
            "x=10.0.0.1:0",
            "Big=1.2.3.4:5",
            "=1.2.3.4:5",
        ] {
            let e = parse(["net", "--net-dial", bad]).unwrap_err();
            assert!(
                matches!(&e, ArgError::BadTarget { value, .. } if value == bad),
                "{e}"
            );
        }
        assert!(parse(["net", "--net-accept", "p=0"]).is_err());
        assert!(parse(["net", "--net-stream-size", "1K"]).is_err());
        // `all` does not pull in net: it needs a peer.
        assert!(!run(&["all"]).probes.contains(&Probe::Net));
    }

    #[test]
    fn ready_alone_is_a_valid_run() {
        assert!(run(&["ready"]).probes.is_empty());
    }

    #[test]
    fn bad_input_is_named_in_the_error() {
        let e = parse(["cpu", "bogus"]).unwrap_err();
        assert_eq!(e, ArgError::UnknownProbe("bogus".into()));
        assert!(e.to_string().contains("bogus"));
        let e = parse(["io", "--io-size", "3K"]).unwrap_err();
        assert!(
            matches!(&e, ArgError::BadSize { option, .. } if option == "--io-size"),
            "{e}"
        );
        let e = parse(["cpu", "--reps", "0"]).unwrap_err();
        assert!(matches!(e, ArgError::BadNumber { .. }));
        assert_eq!(
            parse(["cpu", "--reps"]).unwrap_err(),
            ArgError::MissingValue("--reps".into())
        );
        assert_eq!(
            parse(["--frob=1"]).unwrap_err(),
            ArgError::UnknownOption("--frob".into())
        );
        assert_eq!(parse([]).unwrap_err(), ArgError::NoProbes);
        assert_eq!(parse(["cpu", "--help"]).unwrap(), Command::Help);
    }

    #[test]
    fn to_args_parses_back_to_the_same_config() {
        let defaults = Config {
            probes: alloc::vec![Probe::Cpu],
            ..Config::default()
        };
        assert_eq!(defaults.to_args(), ["cpu"]);
        let ready = Config::default();
        assert_eq!(ready.to_args(), ["ready"]);
        assert_eq!(Config::from_args(["ready"]).unwrap(), ready);
        let every = Config {
            probes: alloc::vec![Probe::Io, Probe::Cpu, Probe::Idle, Probe::Net],
            reps: 2,
            cpu_size: 4097,
            cpu_rounds: 3,
            mem_size: 8 * KIB,
            stream_size: 2 * GIB,
            syscall_iters: 7,
            io_size: 3 * MIB,
            io_target: Some("/dev/vda".into()),
            io_rand_ops: 9,
            fsync_ops: 1,
            idle_ms: 0,
            net_targets: alloc::vec![
                NetTarget::parse("veth=10.200.0.1:7000", false).unwrap(),
                NetTarget::parse("bridge+nat=7001", true).unwrap(),
                NetTarget::parse("loopback=[::1]:7002", false).unwrap(),
            ],
            net_round_trips: 10,
            net_stream_size: 3 * MIB,
        };
        let args = every.to_args();
        assert!(
            args.windows(4).any(|w| w
                == [
                    "--net-dial",
                    "veth=10.200.0.1:7000",
                    "--net-accept",
                    "bridge+nat=7001"
                ]),
            "{args:?}"
        );
        assert!(
            args.windows(2).any(|w| w == ["--io-size", "3M"]),
            "{args:?}"
        );
        assert!(
            args.windows(2).any(|w| w == ["--cpu-size", "4097"]),
            "{args:?}"
        );
        let back = Config::from_args(args.iter().map(String::as_str)).unwrap();
        assert_eq!(back, every);
        assert!(Config::from_args(["cpu", "--help"]).is_err());
    }
}
