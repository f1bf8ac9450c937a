//! The runtime's command line (runc's, as podman, containerd and dockerd call it).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::lifecycle::{self, CreateArgs};
use crate::log::Log;
use crate::state::{DEFAULT_ROOT, Store};
use crate::{BackendKind, Error, Result};

/// isolab as an OCI runtime.
#[derive(Debug, Parser)]
#[command(
    name = "isolab",
    version,
    about = "isolab as an OCI runtime (runc's command line)"
)]
struct OciCli {
    /// Directory of the containers' state.
    #[arg(long, default_value = DEFAULT_ROOT)]
    root: PathBuf,
    /// Where errors are logged.
    #[arg(long)]
    log: Option<PathBuf>,
    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Log progress too.
    #[arg(long)]
    debug: bool,
    /// Use systemd for cgroups (not supported: refused).
    #[arg(long)]
    systemd_cgroup: bool,
    /// Rootless mode (`true`, `false` or `auto`); isolab decides from the caller's uid.
    #[arg(long)]
    rootless: Option<String>,
    #[command(subcommand)]
    command: OciCommand,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
struct BundleArgs {
    /// The bundle directory (default: the current directory).
    #[arg(long, short = 'b', default_value = ".")]
    bundle: PathBuf,
    /// Write the init's pid here.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Unix socket to send the terminal's master to (with `process.terminal`).
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Pass this many extra descriptors (3..) to the container.
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    /// Accepted for compatibility: isolab always uses pivot_root.
    #[arg(long)]
    no_pivot: bool,
    /// Accepted for compatibility: isolab does not make session keyrings.
    #[arg(long)]
    no_new_keyring: bool,
    /// The container id.
    id: String,
}

impl BundleArgs {
    fn create_args(&self) -> CreateArgs {
        CreateArgs {
            id: self.id.clone(),
            bundle: self.bundle.clone(),
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            preserve_fds: self.preserve_fds,
        }
    }
}

#[derive(Debug, Subcommand)]
enum OciCommand {
    /// Set a container up; its program waits for `start`.
    Create(BundleArgs),
    /// Start a created container's program.
    Start {
        /// The container id.
        id: String,
    },
    /// Print a container's state (runtime spec JSON).
    State {
        /// The container id.
        id: String,
    },
    /// Send a signal to a container's init (or, with --all, to all its processes).
    Kill {
        /// Signal every process of the container.
        #[arg(long, short = 'a')]
        all: bool,
        /// The container id.
        id: String,
        /// Signal name or number.
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Remove a container's state and cgroups.
    Delete {
        /// Kill it first if it still runs.
        #[arg(long, short = 'f')]
        force: bool,
        /// The container id.
        id: String,
    },
    /// Create and start a container; without --detach, wait for it and delete it.
    Run {
        /// Return once the program runs.
        #[arg(long, short = 'd')]
        detach: bool,
        /// Accepted for compatibility.
        #[arg(long)]
        keep: bool,
        #[command(flatten)]
        bundle: BundleArgs,
    },
    /// Run another process in a running container.
    Exec(crate::exec::ExecArgs),
    /// List a container's processes.
    Ps {
        /// `table` or `json`.
        #[arg(long, short = 'f', default_value = "table")]
        format: String,
        /// The container id.
        id: String,
        /// Options for ps (ignored).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// What this runtime implements (runtime spec features JSON).
    Features,
    /// Write a default config.json in the bundle.
    Spec {
        /// A config for a caller that is not root.
        #[arg(long)]
        rootless: bool,
        /// The bundle directory.
        #[arg(long, short = 'b', default_value = ".")]
        bundle: PathBuf,
    },
}

/// Parses and runs; returns the exit status (125 for the runtime's own failures).
pub(crate) fn run(backend: BackendKind, args: Vec<OsString>) -> i32 {
    let mut argv = vec![OsString::from("isolab")];
    argv.extend(args.into_iter().skip(1));
    let cli = match OciCli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 125 } else { 0 };
        }
    };
    let log = Log {
        path: cli.log.clone(),
        json: matches!(cli.log_format, LogFormat::Json),
        debug: cli.debug,
    };
    log.debug(&format!("{:?}", cli.command));
    match execute(backend, &cli) {
        Ok(code) => code,
        Err(e) => {
            log.error(&e.to_string());
            125
        }
    }
}

fn execute(backend: BackendKind, cli: &OciCli) -> Result<i32> {
    if cli.systemd_cgroup {
        return Err(Error::Unsupported {
            field: "--systemd-cgroup".into(),
            reason: "isolab manages cgroupfs directly; use the cgroupfs manager (podman --cgroup-manager cgroupfs)".into(),
        });
    }
    // Checked before the runtime opens anything that could take fds 3 and up.
    let preserve = match &cli.command {
        OciCommand::Create(a) | OciCommand::Run { bundle: a, .. } => a.preserve_fds,
        OciCommand::Exec(a) => a.preserve_fds,
        _ => 0,
    };
    container::preserve_fds(preserve)?;
    let store = Store::new(&cli.root);
    let b = backend.backend();
    match &cli.command {
        OciCommand::Create(a) => lifecycle::create(&store, b.as_ref(), &a.create_args()).map(|_| 0),
        OciCommand::Start { id } => lifecycle::start(&store, id).map(|()| 0),
        OciCommand::State { id } => lifecycle::state(&store, id).map(|s| {
            println!("{s}");
            0
        }),
        OciCommand::Kill { all, id, signal } => {
            lifecycle::kill(&store, id, signal, *all).map(|()| 0)
        }
        OciCommand::Delete { force, id } => lifecycle::delete(&store, id, *force).map(|()| 0),
        OciCommand::Run { detach, bundle, .. } => {
            lifecycle::run(&store, b.as_ref(), &bundle.create_args(), *detach)
        }
        OciCommand::Exec(a) => crate::exec::exec(&store, backend, a),
        OciCommand::Ps { format, id, .. } => lifecycle::ps(&store, id, format == "json").map(|s| {
            print!("{s}");
            if format == "json" {
                println!();
            }
            0
        }),
        OciCommand::Features => crate::features::features().map(|s| {
            println!("{s}");
            0
        }),
        OciCommand::Spec { rootless, bundle } => {
            crate::features::write_spec(bundle, *rootless).map(|()| 0)
        }
    }
}
