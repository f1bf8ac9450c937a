//! Services a front-end test starts in its own temporary directory and
//! always stops: a `docker-registry` on a free 127.0.0.1 port, a
//! `containerd` with its own root, state, socket and configuration, and a
//! `dockerd` likewise. Dropping one (also while a failed test unwinds)
//! stops its process group, the processes it left (shims), its mounts and
//! its cgroups, then removes its directory.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use bench::frontend::cleanup;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// A daemon started by a test, in its own process group and directory.
pub struct Service {
    name: &'static str,
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// Extra processes to end when stopping: those whose command line holds this.
    marker: Option<String>,
    /// Cgroups (relative paths) the service's containers ran in.
    cgroups: Vec<String>,
    /// Files outside `dir` the daemon insists on writing, removed if it made them.
    made_outside: Vec<PathBuf>,
}

impl Service {
    fn new(name: &'static str) -> Service {
        let dir = tempfile::Builder::new()
            .prefix(&format!("isolab-{name}-"))
            .tempdir()
            .unwrap();
        Service {
            name,
            child: None,
            dir,
            marker: None,
            cgroups: Vec::new(),
            made_outside: Vec::new(),
        }
    }

    /// The service's private directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn spawn(&mut self, program: &str, args: &[String]) {
        let log = std::fs::File::create(self.dir().join("service.log")).unwrap();
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        self.child = Some(child);
    }

    /// Waits until `ready` holds, failing with the service's log if it
    /// exits or takes longer than 30 s.
    fn wait_ready(&mut self, mut ready: impl FnMut() -> bool) {
        let start = Instant::now();
        while !ready() {
            let child = self.child.as_mut().unwrap();
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "{} exited ({status}) before it was ready:\n{}",
                    self.name,
                    self.log()
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{} not ready within 30 s:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last lines of the daemon's output so far.
    pub fn log(&self) -> String {
        let all = std::fs::read_to_string(self.dir().join("service.log")).unwrap_or_default();
        let lines: Vec<&str> = all.lines().collect();
        lines[lines.len().saturating_sub(8)..].join("\n")
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pg = Pid::from_raw(child.id() as i32);
            let _ = killpg(pg, Signal::SIGTERM);
            let start = Instant::now();
            while matches!(child.try_wait(), Ok(None)) && start.elapsed() < Duration::from_secs(10)
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = killpg(pg, Signal::SIGKILL);
            let _ = child.wait();
        }
        if let Some(marker) = &self.marker {
            for pid in pids_with(marker) {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        let mut stuck = cleanup::unmount_under(self.dir());
        for cg in &self.cgroups {
            stuck.extend(cleanup::remove_cgroup(cg));
        }
        for f in &self.made_outside {
            // Files, or (empty) directories, deepest listed first.
            let _ = std::fs::remove_file(f).or_else(|_| std::fs::remove_dir(f));
        }
        if !stuck.is_empty() {
            eprintln!("{} left behind: {stuck:?}", self.name);
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Processes whose command line contains `marker`.
pub fn pids_with(marker: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker))
        })
        .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `docker-registry` (the distribution registry) on 127.0.0.1.
pub struct Registry {
    service: Service,
    /// `localhost:PORT`, the prefix of image names pushed to it.
    pub host: String,
}

impl Registry {
    /// Starts it with filesystem storage in its temporary directory.
    pub fn start() -> Registry {
        let mut service = Service::new("registry");
        let port = free_port();
        let config = service.dir().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: 127.0.0.1:{port}\n",
                service.dir().join("data").display()
            ),
        )
        .unwrap();
        service.spawn(
            "docker-registry",
            &["serve".into(), config.display().to_string()],
        );
        service.wait_ready(|| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        Registry {
            service,
            host: format!("localhost:{port}"),
        }
    }

    /// The registry's log (for assertion messages).
    pub fn log(&self) -> String {
        self.service.log()
    }
}

/// A `containerd` with everything in its temporary directory, used through `ctr`.
pub struct Containerd {
    service: Service,
    socket: PathBuf,
    namespace: String,
}

impl Containerd {
    /// Starts it (CRI plugin off: no CNI, no kubelet here).
    pub fn start() -> Containerd {
        let mut service = Service::new("containerd");
        // containerd 1.6 makes these whatever its configuration says.
        for dir in [
            "/run/containerd/s",
            "/run/containerd/fifo",
            "/run/containerd/runc",
            "/run/containerd",
        ] {
            if !Path::new(dir).exists() {
                service.made_outside.push(dir.into());
            }
        }
        let d = service.dir().to_path_buf();
        let socket = d.join("containerd.sock");
        let config = d.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{sock}\"\n[ttrpc]\n  address = \"{sock}.ttrpc\"\n\
                 [debug]\n  address = \"\"\n[metrics]\n  address = \"\"\n",
                root = d.join("root").display(),
                state = d.join("state").display(),
                sock = socket.display()
            ),
        )
        .unwrap();
        service.spawn(
            "containerd",
            &["--config".into(), config.display().to_string()],
        );
        // The shims it starts carry the socket's path in their command line.
        service.marker = Some(socket.display().to_string());
        let namespace = format!("isolab-test-{}", std::process::id());
        // ctr's default cgroup path is /NAMESPACE/ID.
        service.cgroups.push(format!("/{namespace}"));
        let mut ctrd = Containerd {
            service,
            socket,
            namespace,
        };
        let sock = ctrd.socket.clone();
        ctrd.service.wait_ready(|| {
            sock.exists()
                && Command::new("ctr")
                    .arg("--address")
                    .arg(&sock)
                    .arg("version")
                    .output()
                    .is_ok_and(|o| o.status.success())
        });
        ctrd
    }

    /// Its private directory.
    pub fn dir(&self) -> &Path {
        self.service.dir()
    }

    /// `ctr run --snapshotter native --runc-binary RUNTIME --runc-root
    /// (in its directory) OPTS IMAGE ID CMD`.
    pub fn run(&self, runtime: &str, opts: &[&str], image: &str, id: &str, cmd: &[&str]) -> Output {
        let root = self.dir().join("runc").display().to_string();
        let mut a = vec!["run", "--snapshotter", "native", "--runc-binary", runtime];
        a.extend(["--runc-root", &root]);
        a.extend_from_slice(opts);
        a.extend([image, id]);
        a.extend_from_slice(cmd);
        self.ctr(&a)
    }

    /// Runs `ctr --address SOCK --namespace NS ARGS`.
    pub fn ctr(&self, args: &[&str]) -> Output {
        Command::new("ctr")
            .arg("--address")
            .arg(&self.socket)
            .args(["--namespace", &self.namespace])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// The daemon's log (for assertion messages).
    pub fn log(&self) -> String {
        self.service.log()
    }
}

/// A `dockerd` with its own data root, exec root, socket and cgroup parent,
/// and `isolab` registered as a runtime.
pub struct Dockerd {
    service: Service,
    host: String,
}

impl Dockerd {
    /// Starts it with runtime `isolab` = `runtime` (panics with its log if it cannot start).
    pub fn start(runtime: &str) -> Dockerd {
        let mut service = Service::new("dockerd");
        let d = service.dir().to_path_buf();
        let socket = d.join("docker.sock");
        let cgroup = format!("/isolab-docker-{}", std::process::id());
        // dockerd writes its identity key to /etc/docker/key.json and has no
        // option to move it; removed afterwards if this run made it.
        let key = PathBuf::from("/etc/docker/key.json");
        if !key.exists() {
            service.made_outside.push(key);
        }
        let p = |n: &str| d.join(n).display().to_string();
        let args: Vec<String> = [
            "--data-root",
            &p("data"),
            "--exec-root",
            &p("exec"),
            "--pidfile",
            &p("docker.pid"),
            "--config-file",
            &p("daemon.json"),
            "-H",
            &format!("unix://{}", socket.display()),
            "--iptables=false",
            "--ip6tables=false",
            "--bridge=none",
            "--storage-driver",
            "vfs",
            "--cgroup-parent",
            &cgroup,
            "--default-ulimit",
            "nofile=1024:1024",
            "--add-runtime",
            &format!("isolab={runtime}"),
        ]
        .map(String::from)
        .to_vec();
        std::fs::write(d.join("daemon.json"), "{}").unwrap();
        std::fs::create_dir_all(d.join("client")).unwrap();
        service.cgroups.push(cgroup);
        service.marker = Some(p("exec"));
        service.spawn("dockerd", &args);
        let host = format!("unix://{}", socket.display());
        let client = d.join("client");
        service.wait_ready(|| docker_client(&host, &client, &["version"]).status.success());
        Dockerd { service, host }
    }

    /// Runs the `docker` client against this daemon (its config in the temp dir).
    pub fn docker(&self, args: &[&str]) -> Output {
        docker_client(&self.host, &self.service.dir().join("client"), args)
    }

    /// The daemon's log (for assertion messages).
    pub fn log(&self) -> String {
        self.service.log()
    }
}

fn docker_client(host: &str, config: &Path, args: &[&str]) -> Output {
    Command::new("docker")
        .env("DOCKER_HOST", host)
        .env("DOCKER_CONFIG", config)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}
