//! Command-line arguments (clap derive) and the value parsers for sizes and
//! durations.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// One workload, run natively, in a container and in a micro VM, measured side by side.
#[derive(Debug, Parser)]
#[command(name = "isolab", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// What this host can and cannot do (KVM kind, cgroups, namespaces, peers).
    #[command(after_help = "Example: isolab doctor --json | python3 -m json.tool")]
    Doctor {
        /// Print JSON (schema in bench/README.md) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run a program under one isolation.
    #[command(
        after_help = "Example: isolab run --isolation container --memory 64M -- /bin/sh -c 'hostname; ps'"
    )]
    Run(RunArgs),
    /// Run workload probes under one isolation.
    #[command(after_help = "Example: isolab probe --isolation vm --guest tiny cpu syscall")]
    Probe(ProbeArgs),
    /// The main job: every probe under every isolation this host supports, a side-by-side table and a report.
    #[command(after_help = "Example: isolab compare --out reports/latest")]
    Compare {
        /// Directory to write the report into.
        #[arg(long, default_value = "reports/latest")]
        out: PathBuf,
        /// Print the table as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The full benchmark matrix with statistics, written as JSON (and CSV beside it).
    #[command(
        after_help = "Example: isolab bench --quick --out results.json\n         isolab bench --quick --json | python3 -m json.tool"
    )]
    Bench {
        /// A short matrix (under 2 minutes).
        #[arg(long)]
        quick: bool,
        /// Repetitions per cell.
        #[arg(long)]
        runs: Option<u32>,
        /// Results file.
        #[arg(long, default_value = "results.json")]
        out: PathBuf,
        /// Instead of measuring, run each isolation many times (sequentially
        /// `--runs`, default 1000, then 16 at once) and count failures and leaks.
        #[arg(long)]
        soak: bool,
        /// Print the results document (the same JSON as the results file) to
        /// stdout instead of the table; progress stays on stderr.
        #[arg(long, conflicts_with = "soak")]
        json: bool,
    },
    /// Turn results files into a report (Markdown, charts, HTML).
    #[command(
        after_help = "Example: isolab report results.json other-machine.json --out reports/class"
    )]
    Report {
        /// Results files written by `isolab bench` or `isolab compare`.
        #[arg(required = true)]
        results: Vec<PathBuf>,
        /// Directory to write the report into.
        #[arg(long, default_value = "reports/latest")]
        out: PathBuf,
    },
    /// The guest Linux kernel.
    #[command(after_help = "Example: isolab kernel build")]
    Kernel {
        /// `build` or `path`.
        #[command(subcommand)]
        action: KernelAction,
    },
    /// Remove what a killed run left behind (cgroups, mounts, temp files).
    #[command(after_help = "Example: isolab clean")]
    Clean,
    /// An emulated hardware-KVM host (QEMU TCG with AMD SVM) that runs a
    /// command with this machine's files: the Linux guest and a pure cgroup v2
    /// host where KVM is missing or software-assisted. Slow; its times mean
    /// nothing, its function is real.
    #[command(
        after_help = "Example: isolab testhost run -- isolab probe --isolation vm --guest linux all"
    )]
    Testhost {
        /// `build`, `run` or `path`.
        #[command(subcommand)]
        action: TesthostAction,
    },
}

/// `isolab testhost …`.
#[derive(Debug, Subcommand)]
pub enum TesthostAction {
    /// Fetch Debian's kernel package and build the boot files (cached).
    Build(TesthostImageArgs),
    /// Print the cached boot files' directory (fails if not built).
    Path(TesthostImageArgs),
    /// Boot the test host, run a command in it, print its output and exit
    /// with its status (124 when the timeout stopped it).
    Run(TesthostRunArgs),
}

/// Which kernel the test host boots.
#[derive(Debug, Args)]
pub struct TesthostImageArgs {
    /// A Debian `linux-image-*-amd64` package file to use instead of the
    /// release's current one (for machines without Debian's package archive).
    #[arg(long, env = "ISOLAB_TESTHOST_DEB")]
    pub kernel_deb: Option<PathBuf>,
}

/// `isolab testhost run`.
#[derive(Debug, Args)]
pub struct TesthostRunArgs {
    /// The boot files.
    #[command(flatten)]
    pub image: TesthostImageArgs,
    /// Directory shared read-write at its own path (default: the current
    /// directory); the rest of this machine's files are seen read-only.
    #[arg(long)]
    pub share: Option<PathBuf>,
    /// RAM of the test host.
    #[arg(long, value_parser = parse_size, default_value = "3G")]
    pub memory: u64,
    /// CPUs of the test host. One by default: with two, QEMU 7.2's TCG now
    /// and then loses the cross-CPU interrupt KVM sends to kick a vCPU out of
    /// guest mode, and the host locks up. Guests inside may still have many vCPUs.
    #[arg(long, default_value_t = 1)]
    pub cpus: u8,
    /// Wall-clock limit for the whole run, boot included.
    #[arg(long, value_parser = parse_duration, default_value = "30m")]
    pub timeout: Duration,
    /// Extra environment variables for the command, `NAME=VALUE`.
    #[arg(long = "env", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// The command and its arguments (default: an interactive shell).
    #[arg(last = true)]
    pub command: Vec<String>,
}

/// Parses `NAME=VALUE`.
pub fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v))
            if !k.is_empty()
                && k.chars().all(|c| c == '_' || c.is_ascii_alphanumeric())
                && !k.starts_with(|c: char| c.is_ascii_digit()) =>
        {
            Ok((k.to_string(), v.to_string()))
        }
        _ => Err(format!(
            "`{s}` is not NAME=VALUE with a valid variable name"
        )),
    }
}

/// `isolab kernel …`.
#[derive(Debug, Subcommand)]
pub enum KernelAction {
    /// Build the project's microVM kernel from Debian's linux-source-6.1 (cached).
    Build {
        /// Install missing build packages with apt-get first (needs root).
        #[arg(long)]
        install: bool,
    },
    /// Print the path of the cached kernel (fails if not built).
    Path,
}

/// The isolation to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IsolationArg {
    /// A plain process.
    Native,
    /// isolab's container runtime.
    Container,
    /// isolab's micro VM.
    Vm,
}

/// The guest for `--isolation vm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GuestArg {
    /// A Linux kernel whose /init is the workload.
    Linux,
    /// The freestanding tiny guest (CPL 3, no interrupts).
    Tiny,
}

/// `--net`: the container's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NetArg {
    /// A point-to-point veth to the host.
    Veth,
    /// A bridge with NAT and a published port.
    Nat,
    /// Both, in one network namespace.
    Both,
}

/// Options shared by `run` and `probe`.
#[derive(Debug, Args)]
pub struct Common {
    /// How to isolate (`--rootfs`/`--bundle` imply container).
    #[arg(long, value_enum, required_unless_present_any = ["rootfs", "bundle"])]
    pub isolation: Option<IsolationArg>,
    /// Guest for `--isolation vm` (default: linux where the host can boot it, else tiny).
    #[arg(long, value_enum)]
    pub guest: Option<GuestArg>,
    /// Guest kernel (vmlinux or bzImage) for `--guest linux`.
    #[arg(long, env = "ISOLAB_KERNEL")]
    pub kernel: Option<PathBuf>,
    /// Extra guest kernel parameters for `--guest linux` (e.g. `initcall_debug`).
    #[arg(long, default_value = "")]
    pub cmdline: String,
    /// Show the Linux guest's console (kernel log) live on stdout.
    #[arg(long)]
    pub console: bool,
    /// Container root filesystem.
    #[arg(long, conflicts_with = "bundle")]
    pub rootfs: Option<PathBuf>,
    /// OCI bundle (config.json + rootfs) for the container.
    #[arg(long)]
    pub bundle: Option<PathBuf>,
    /// Container network: `veth` (a /30 veth to the host, no NAT), `nat`
    /// (Docker's default shape: a bridge, MASQUERADE and a published port) or
    /// `both`. Without it a container has only `lo`, except that the `net`
    /// probe gets `both`.
    #[arg(long, value_enum)]
    pub net: Option<NetArg>,
    /// Memory limit (container) or guest RAM (VM), e.g. 256M, 1G. A container
    /// limit below 4 MiB or above the host's RAM is refused, not clamped.
    #[arg(long, value_parser = parse_size)]
    pub memory: Option<u64>,
    /// CPU limit (container) or vCPUs (VM). A container limit below 0.01 or
    /// above the host's online CPUs is refused, not clamped.
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Wall-clock limit, e.g. 30s, 500ms, 2m.
    #[arg(long, value_parser = parse_duration, default_value = "120s")]
    pub timeout: Duration,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `isolab run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Isolation and resources.
    #[command(flatten)]
    pub common: Common,
    /// The program and its arguments (with `--bundle`, default: the bundle's
    /// `process.args`). Its stdin, stdout and stderr are isolab's own (nothing
    /// is copied or kept) unless `--json` asks for the output in the outcome.
    /// Exit status: the program's, or 124 on `--timeout`, 137 on an OOM kill,
    /// 125 when isolab itself fails, 126 when the program cannot be executed,
    /// 127 when it is not found. A user who is not root gets a rootless
    /// container (a user namespace, their uid mapped to 0 inside, and their
    /// /etc/subuid and /etc/subgid ranges to ids 1 and up through newuidmap and
    /// newgidmap where those exist, else a note says why only 0 is mapped); its
    /// limits need a cgroup that user may write, else a note says which are off.
    #[arg(last = true, required_unless_present = "bundle")]
    pub program: Vec<String>,
}

/// `isolab probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Isolation and resources.
    #[command(flatten)]
    pub common: Common,
    /// Probes (ready, cpu, mem, syscall, io, idle, all, net) and workload options (e.g. --reps 5).
    #[arg(required = true, allow_hyphen_values = true, trailing_var_arg = true)]
    pub probes: Vec<String>,
}

/// Parses a size such as `512`, `64K`, `256M`, `1G`, `2GiB` into bytes (binary multiples).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    if digits == 0 {
        return Err(format!("`{s}` is not a size (expected e.g. 256M or 1G)"));
    }
    let n: u64 = t[..digits]
        .parse()
        .map_err(|_| format!("`{s}` is too large"))?;
    let unit = t[digits..].trim().to_ascii_uppercase();
    let shift = match unit.trim_end_matches("IB").trim_end_matches('B') {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => {
            return Err(format!(
                "`{s}` has an unknown unit `{unit}` (use K, M, G or T)"
            ));
        }
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("`{s}` is too large"))
}

/// Parses a duration such as `30s`, `500ms`, `2m`, `1h` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let digits = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let n: f64 = t[..digits]
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (expected e.g. 30s or 500ms)"))?;
    let secs = match &t[digits..] {
        "" | "s" => n,
        "ms" => n / 1e3,
        "us" => n / 1e6,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        u => {
            return Err(format!(
                "`{s}` has an unknown unit `{u}` (use ms, s, m or h)"
            ));
        }
    };
    if !secs.is_finite() || secs <= 0.0 || secs > 7.0 * 86400.0 {
        return Err(format!(
            "`{s}` is out of range (more than 0, at most a week)"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("3mb"), Ok(3 << 20));
        assert!(parse_size("M").is_err());
        assert!(parse_size("12Q").is_err());
        assert!(parse_size("-1G").is_err());
        assert!(parse_size("99999999999T").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("9999h").is_err());
    }

    #[test]
    fn cli_parses_the_documented_forms() {
        let c = Cli::try_parse_from([
            "isolab",
            "run",
            "--isolation",
            "container",
            "--memory",
            "64M",
            "--",
            "/bin/sh",
            "-c",
            "true",
        ])
        .unwrap();
        match c.command {
            Command::Run(r) => {
                assert_eq!(r.common.memory, Some(64 << 20));
                assert_eq!(r.program, ["/bin/sh", "-c", "true"]);
            }
            other => panic!("{other:?}"),
        }
        let c = Cli::try_parse_from([
            "isolab",
            "probe",
            "--isolation",
            "vm",
            "--guest",
            "tiny",
            "cpu",
            "--reps",
            "3",
        ])
        .unwrap();
        match c.command {
            Command::Probe(p) => assert_eq!(p.probes, ["cpu", "--reps", "3"]),
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["isolab", "run", "--isolation", "bogus", "--", "x"]).is_err());
        assert!(
            Cli::try_parse_from([
                "isolab",
                "run",
                "--isolation",
                "native",
                "--memory",
                "lots",
                "--",
                "x"
            ])
            .is_err()
        );
    }
}
