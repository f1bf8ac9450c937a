//! Rootful podman in a private store: its own `--root`, `--runroot`,
//! `--tmpdir`, configuration files, event log and cgroup parent, all in one
//! temporary directory, so nothing touches `/etc/containers` settings,
//! `/var/lib/containers/storage` or another user's containers.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use super::{FrontendError, cleanup};

/// Limits podman passes to every container: the hard `RLIMIT_NOFILE` of the
/// build machines is 20000 and podman's default tries to raise it to 1048576,
/// which the kernel refuses.
const ULIMITS: [&str; 2] = ["nofile=1024:1024", "nproc=1024:1024"];

/// A podman whose state lives in a temporary directory until dropped.
#[derive(Debug)]
pub struct Podman {
    program: PathBuf,
    version: Option<String>,
    dir: tempfile::TempDir,
    cgroup_parent: String,
}

impl Podman {
    /// Finds podman on `PATH` and writes its private configuration.
    pub fn new() -> Result<Podman, FrontendError> {
        let tool = hostcaps::peers::find("podman", "--version");
        let program = tool.path.ok_or(FrontendError::Missing { tool: "podman" })?;
        let dir = tempfile::Builder::new()
            .prefix("isolab-podman-")
            .tempdir()
            .map_err(|source| FrontendError::Prepare {
                what: "a temporary directory",
                path: std::env::temp_dir(),
                source,
            })?;
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let cgroup_parent = format!(
            "/isolab-podman-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let podman = Podman {
            program,
            version: tool.version,
            dir,
            cgroup_parent,
        };
        podman.write_config()?;
        Ok(podman)
    }

    fn write_config(&self) -> Result<(), FrontendError> {
        let d = self.dir.path();
        let files = [
            (
                "registries.conf",
                "unqualified-search-registries = []\n".to_string(),
            ),
            // Credentials podman reads (and `login` would write): none.
            ("auth.json", "{\"auths\": {}}\n".to_string()),
            (
                "storage.conf",
                format!(
                    "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
                    d.join("root").display(),
                    d.join("runroot").display()
                ),
            ),
            (
                "containers.conf",
                format!(
                    "[containers]\ndefault_ulimits = [\"{}\", \"{}\"]\nnetns = \"none\"\n\
                     [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n\
                     events_logfile_path = \"{}\"\ntmp_dir = \"{}\"\n",
                    ULIMITS[0],
                    ULIMITS[1],
                    d.join("events.log").display(),
                    d.join("tmp").display()
                ),
            ),
        ];
        for (name, text) in files {
            let path = d.join(name);
            std::fs::write(&path, text).map_err(|source| FrontendError::Prepare {
                what: "podman's configuration",
                path,
                source,
            })?;
        }
        let tmp = d.join("tmp");
        std::fs::create_dir_all(&tmp).map_err(|source| FrontendError::Prepare {
            what: "podman's temporary directory",
            path: tmp,
            source,
        })
    }

    /// The podman program.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// `podman --version`, if it answered.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// The private directory (configuration, storage, event log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The cgroup (relative to each hierarchy's root) containers run below.
    pub fn cgroup_parent(&self) -> &str {
        &self.cgroup_parent
    }

    /// The environment that points podman (and the image library under it)
    /// at the private configuration and temporary directory.
    pub fn envs(&self) -> Vec<(String, String)> {
        let d = self.dir.path();
        let p = |name: &str| d.join(name).display().to_string();
        vec![
            ("CONTAINERS_CONF".into(), p("containers.conf")),
            ("CONTAINERS_REGISTRIES_CONF".into(), p("registries.conf")),
            ("CONTAINERS_STORAGE_CONF".into(), p("storage.conf")),
            ("REGISTRY_AUTH_FILE".into(), p("auth.json")),
            // Image copies stage big files in $TMPDIR (default /var/tmp).
            ("TMPDIR".into(), p("tmp")),
        ]
    }

    /// Global options before the subcommand.
    pub fn global_args(&self) -> Vec<String> {
        let d = self.dir.path();
        let p = |name: &str| d.join(name).display().to_string();
        vec![
            "--root".into(),
            p("root"),
            "--runroot".into(),
            p("runroot"),
            "--tmpdir".into(),
            p("tmp"),
            "--storage-driver".into(),
            "vfs".into(),
            "--cgroup-manager".into(),
            "cgroupfs".into(),
            "--events-backend".into(),
            "file".into(),
        ]
    }

    /// `run` and its options for OCI runtime `runtime` (a name on `PATH` or
    /// a path): no network, the limits above, this store's cgroup parent.
    pub fn run_args(&self, runtime: &str) -> Vec<String> {
        let mut a: Vec<String> = ["run", "--runtime", runtime, "--network", "none"]
            .map(String::from)
            .to_vec();
        for u in ULIMITS {
            a.extend(["--ulimit".to_string(), u.to_string()]);
        }
        a.extend(["--cgroup-parent".to_string(), self.cgroup_parent.clone()]);
        a
    }

    /// A `podman` command with the private environment and global options;
    /// add the subcommand and its arguments.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.program);
        c.envs(self.envs()).args(self.global_args());
        c
    }

    /// Runs `podman ARGS` with no input and returns what it did.
    pub fn output(&self, args: &[&str]) -> Result<Output, FrontendError> {
        self.command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| FrontendError::Spawn {
                command: format!("podman {}", args.join(" ")),
                source,
            })
    }

    /// Runs `podman ARGS` and returns its standard output, or an error with
    /// its status and error output when it fails.
    pub fn check(&self, args: &[&str]) -> Result<String, FrontendError> {
        let o = self.output(args)?;
        if o.status.success() {
            Ok(String::from_utf8_lossy(&o.stdout).into_owned())
        } else {
            Err(FrontendError::Failed {
                command: format!("podman {}", args.join(" ")),
                status: o.status.to_string(),
                stderr: String::from_utf8_lossy(&o.stderr).trim().to_string(),
            })
        }
    }

    /// Builds the demo image (see [`super::write_demo_context`]) as `tag`
    /// from a context written inside the private directory.
    pub fn build_demo_image(
        &self,
        tag: &str,
        busybox: &Path,
        program: &Path,
    ) -> Result<(), FrontendError> {
        let ctx = self.dir.path().join("context");
        super::write_demo_context(&ctx, busybox, program)?;
        let ctx = ctx.display().to_string();
        let file = format!("{ctx}/Containerfile");
        self.check(&["build", "--quiet", "--tag", tag, "--file", &file, &ctx])
            .map(|_| ())
    }

    /// Removes every container of this store, then anything mounted under
    /// the private directory and the containers' cgroups. Returns what would
    /// not go (also logged when dropped).
    pub fn clean(&self) -> Vec<String> {
        let mut stuck = Vec::new();
        if let Err(e) = self.check(&["rm", "--all", "--force", "--time", "0"]) {
            stuck.push(e.to_string());
        }
        stuck.extend(cleanup::unmount_under(self.dir.path()));
        stuck.extend(cleanup::remove_cgroup(&self.cgroup_parent));
        stuck
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        for s in self.clean() {
            tracing::warn!(what = %s, "podman's private store left something behind");
        }
    }
}
