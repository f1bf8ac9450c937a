//! The `isolab bench` engine: every probe × every isolation this host
//! supports, plus peers, in interleaved rounds after a warm-up.
//!
//! Each round runs every subject once in the same order (A B C A B C…), so
//! slow drift of the host (thermal, background load) hits all subjects
//! equally, and samples of one round can be paired for ratios.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::peers::{self, Counterpart, PeerOptions, PeerRunner, PeerSet};
use crate::results::{
    Better, Environment, Metric, MetricKey, RESULTS_SCHEMA_VERSION, Results, RunSettings, Status,
    SubjectStatus,
};
use isolation::{self, Invocation, Isolation, IsolationError, IsolationKind, Limits, Outcome};

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchOptions {
    /// Small sizes and few rounds (`--quick`).
    pub quick: bool,
    /// Measured rounds.
    pub rounds: u32,
    /// Warm-up rounds, run and discarded.
    pub warmup: u32,
    /// Workload probes run in every round (besides the idle/boot run).
    pub probes: Vec<String>,
    /// Workload options (sizes, repetitions inside one run).
    pub workload_args: Vec<String>,
    /// Isolations to try; unsupported ones are recorded with their reason.
    pub isolations: Vec<IsolationKind>,
    /// Measure peers (runc, crun, bwrap, runsc, podman, QEMU) too.
    pub peers: bool,
    /// isolab's own binary, given to podman as its OCI runtime for the
    /// podman-isolab peer (`None`: that peer is recorded as missing).
    pub oci_runtime: Option<PathBuf>,
    /// Label for this run in reports (default: the hostname).
    pub label: Option<String>,
    /// Time limit of a single run.
    pub timeout: Duration,
    /// Directory every isolation's `io` probe writes in (default: a fresh
    /// temporary directory, removed afterwards). One directory for all keeps
    /// the filesystem the same, so only the isolation differs.
    pub io_dir: Option<PathBuf>,
}

impl BenchOptions {
    /// The `--quick` matrix: 6 rounds (the fewest whose min–max interval
    /// covers the median with ≥ 95%), small sizes; about 40 s on a 2-core host.
    pub fn quick() -> BenchOptions {
        BenchOptions {
            quick: true,
            rounds: 6,
            warmup: 1,
            probes: ["cpu", "mem", "syscall", "io"].map(String::from).to_vec(),
            workload_args: [
                "--reps",
                "3",
                "--cpu-rounds",
                "4",
                "--mem-size",
                "16M",
                "--stream-size",
                "8M",
                "--syscall-iters",
                "10000",
                "--io-size",
                "8M",
                "--io-rand-ops",
                "256",
                "--fsync-ops",
                "8",
            ]
            .map(String::from)
            .to_vec(),
            isolations: IsolationKind::ALL.to_vec(),
            peers: true,
            oci_runtime: None,
            label: None,
            timeout: Duration::from_secs(60),
            io_dir: None,
        }
    }

    /// The full matrix: 11 rounds (enough for a 95% interval of width two
    /// order statistics) with the workload's default sizes.
    pub fn full() -> BenchOptions {
        BenchOptions {
            quick: false,
            rounds: 11,
            warmup: 2,
            workload_args: Vec::new(),
            timeout: Duration::from_secs(300),
            ..BenchOptions::quick()
        }
    }
}

/// Errors that stop the whole matrix (single failed runs are recorded instead).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// No measured rounds requested.
    #[error("--runs must be at least 1 (got {0})")]
    NoRounds(u32),
    /// Native is the baseline every ratio needs.
    #[error("the native baseline cannot run, so nothing can be compared: {0}")]
    NoBaseline(String),
    /// The directory for the `io` probe is unusable.
    #[error("io directory {path}: {source}")]
    IoDir {
        /// The directory.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Preparing the peers failed in a way that is not about one peer.
    #[error(transparent)]
    Peers(#[from] peers::PeerError),
}

/// Progress display for the matrix. The CLI creates it; libraries never draw
/// on their own. Hidden when stderr is not a terminal.
#[derive(Debug, Clone)]
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A progress bar with an ETA on stderr (hidden if stderr is not a terminal).
    pub fn stderr() -> Progress {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} runs, ETA {eta}  {msg}",
            )
            .expect("static template")
            .progress_chars("=> "),
        );
        Progress { bar }
    }

    /// No display at all (tests, `--json`).
    pub fn hidden() -> Progress {
        Progress {
            bar: ProgressBar::hidden(),
        }
    }

    /// Wraps a bar the caller configured.
    pub fn from_bar(bar: ProgressBar) -> Progress {
        Progress { bar }
    }

    /// The underlying bar, for steps outside the matrix (e.g. a kernel build).
    pub fn bar(&self) -> &ProgressBar {
        &self.bar
    }

    fn start(&self, total: u64) {
        self.bar.set_length(total);
        self.bar.set_position(0);
    }

    fn step(&self, msg: String) {
        self.bar.set_message(msg);
        self.bar.inc(1);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// One thing a round runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Task {
    /// Boot time and idle memory: the workload's `idle` probe.
    Idle(usize),
    /// The measurement probes.
    Probes(usize),
    /// isolab's own start of `/bin/true` (container) or of the tiny guest (VM).
    OurStart(usize),
    /// A peer's start.
    Peer(usize),
}

/// Samples of one metric so far.
struct Samples {
    unit: String,
    better: Better,
    pairs: Vec<(u32, f64)>,
}

/// Samples collected so far, keyed by metric.
#[derive(Default)]
struct Collector {
    samples: BTreeMap<MetricKey, Samples>,
}

/// A metric key from its parts.
fn key(subject: &str, probe: &str, metric: &str, kind: Option<&str>) -> MetricKey {
    MetricKey {
        subject: subject.into(),
        probe: probe.into(),
        metric: metric.into(),
        kind: kind.map(String::from),
    }
}

impl Collector {
    fn add(&mut self, key: MetricKey, unit: &str, round: u32, v: f64) {
        let better = better_for(&key.metric, unit);
        self.samples
            .entry(key)
            .or_insert_with(|| Samples {
                unit: unit.to_string(),
                better,
                pairs: Vec::new(),
            })
            .pairs
            .push((round, v));
    }

    fn into_metrics(self) -> Vec<Metric> {
        self.samples
            .into_iter()
            .filter_map(|(key, s)| Metric::from_samples(key, &s.unit, s.better, &s.pairs))
            .collect()
    }
}

/// Throughput-like metrics are better higher; times and sizes lower.
pub fn better_for(metric: &str, unit: &str) -> Better {
    let higher = metric.contains("per_s")
        || metric.contains("iops")
        || unit.ends_with("/s")
        || unit == "IOPS";
    if higher {
        Better::Higher
    } else {
        Better::Lower
    }
}

const MIB: f64 = 1024.0 * 1024.0;

/// Host-side memory of a run: the peak RSS of its processes, or, for a VMM
/// that reports none, its own overhead plus the guest RAM it touched.
pub fn host_footprint_bytes(a: &isolation::Accounting) -> Option<u64> {
    a.host_peak_rss_bytes
        .or(match (a.overhead_bytes, a.guest_touched_bytes) {
            (Some(o), Some(g)) => Some(o + g),
            _ => None,
        })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Records what one outcome measured.
fn collect_outcome(
    c: &mut Collector,
    subject: &str,
    task: Task,
    round: u32,
    wall: Duration,
    o: &Outcome,
) {
    match task {
        Task::Idle(_) => {
            if let Some(b) = &o.boot {
                collect_boot(c, subject, round, b);
            }
            collect_idle_memory(c, subject, round, &o.accounting);
        }
        Task::Probes(_) => collect_probes(c, subject, round, wall, o),
        Task::OurStart(_) | Task::Peer(_) => collect_outcome_wall(c, subject, round, wall),
    }
}

/// Boot time in total and the phases the backend could tell apart.
fn collect_boot(c: &mut Collector, subject: &str, round: u32, b: &isolation::BootTimes) {
    c.add(
        key(subject, "boot", "total_ms", None),
        "ms",
        round,
        ms(b.total),
    );
    if let Some(s) = b.setup {
        c.add(key(subject, "boot", "setup_ms", None), "ms", round, ms(s));
    }
    if let Some(k) = b.kernel {
        c.add(key(subject, "boot", "kernel_ms", None), "ms", round, ms(k));
    }
    if let Some(i) = b.init {
        c.add(key(subject, "boot", "init_ms", None), "ms", round, ms(i));
    }
}

/// Memory of an idle run, from whichever accounting the backend has.
fn collect_idle_memory(c: &mut Collector, subject: &str, round: u32, a: &isolation::Accounting) {
    let idle = host_footprint_bytes(a);
    let mem = [
        ("idle_peak_rss_mib", idle),
        ("overhead_mib", a.overhead_bytes),
        ("cgroup_peak_mib", a.cgroup_peak_bytes),
        ("guest_touched_mib", a.guest_touched_bytes),
    ];
    for (metric, bytes) in mem {
        if let Some(b) = bytes {
            c.add(
                key(subject, "memory", metric, None),
                "MiB",
                round,
                b as f64 / MIB,
            );
        }
    }
}

/// The probes' own result lines, plus the run's wall time, CPU time and peak RSS.
fn collect_probes(c: &mut Collector, subject: &str, round: u32, wall: Duration, o: &Outcome) {
    // `ready` only marks that the workload started; it measures nothing.
    for line in o.results.iter().filter(|l| l.probe != "ready") {
        c.add(
            key(subject, &line.probe, &line.metric, line.kind.as_deref()),
            &line.unit,
            round,
            line.value,
        );
    }
    c.add(key(subject, "run", "wall_ms", None), "ms", round, ms(wall));
    if let Some(cpu) = o.accounting.cpu_time {
        c.add(
            key(subject, "run", "cpu_time_ms", None),
            "ms",
            round,
            ms(cpu),
        );
    }
    if let Some(b) = o.accounting.host_peak_rss_bytes {
        c.add(
            key(subject, "memory", "probes_peak_rss_mib", None),
            "MiB",
            round,
            b as f64 / MIB,
        );
    }
}

/// The first lines of a run's diagnostics, for notes.
fn console_excerpt(o: &Outcome) -> String {
    let text = String::from_utf8_lossy(&o.console);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(3)
        .collect();
    if lines.is_empty() {
        "no diagnostics".into()
    } else {
        lines.join(" / ")
    }
}

/// A backend that can run, with what it is called and the program it starts.
struct Subject {
    kind: IsolationKind,
    backend: Box<dyn Isolation>,
    /// Backend for isolab's side of the start-latency comparison (container with the peers' rootfs).
    start_backend: Option<Box<dyn Isolation>>,
}

/// Makes the backend for an isolation kind (normally [`isolation::backend_with`]).
pub type BackendFactory<'a> = dyn Fn(IsolationKind, &isolation::BackendOptions) -> Result<Box<dyn Isolation>, IsolationError>
    + 'a;

/// Runs the matrix with the backends this build and host provide.
pub fn run(opts: &BenchOptions, progress: &Progress) -> Result<Results, BenchError> {
    run_with(opts, progress, &isolation::backend_with)
}

/// Runs the matrix with backends from `factory` (tests use stand-ins).
///
/// In four phases: plan (which isolations and peers run, and why the
/// others cannot), prepare (the io directory, the order of one round),
/// rounds (warm-up, then the measured rounds), results (statuses, metrics,
/// ratios).
pub fn run_with(
    opts: &BenchOptions,
    progress: &Progress,
    factory: &BackendFactory<'_>,
) -> Result<Results, BenchError> {
    if opts.rounds == 0 {
        return Err(BenchError::NoRounds(0));
    }
    let started = Instant::now();
    let mut environment = Environment::collect();
    environment.attach_doctor(&isolation::doctor::run());

    let mut plan = plan(opts, factory)?;
    let io_dir = IoDir::prepare(opts.io_dir.as_ref())?;
    let measurements = Matrix::new(opts, &plan, &io_dir.path).run_rounds(opts, progress);
    let mut results = assemble_results(opts, started, environment, &mut plan, measurements);
    // The io probe's numbers held against fio's, once, on the same directory.
    let native_io = results
        .metrics
        .iter()
        .any(|m| m.subject == "native" && m.probe == "io");
    if native_io {
        progress
            .bar()
            .set_message("cross-checking the io probe with fio");
        let check = crate::fio::cross_check(&io_dir.path, &opts.workload_args);
        results.subjects.push(check.status);
        results.metrics.extend(check.metrics);
    }
    // The peer set (and its temporary bundle) and the io directory are removed here.
    drop(plan);
    drop(io_dir);
    Ok(results)
}

/// What the matrix runs: the isolations that can run here, those that
/// cannot (with why), and the peers.
struct Plan {
    subjects: Vec<Subject>,
    /// Statuses of the isolations whose backend is not available here.
    unsupported: Vec<SubjectStatus>,
    /// The peers, when asked for; owns their bundle until dropped.
    peer_set: Option<PeerSet>,
    /// The peers that work, as planned. Rounds index them; one that fails
    /// mid-run is skipped, not removed, so the indices stay valid.
    peers: Vec<PeerRunner>,
}

/// Decides what runs. Native is the baseline every ratio needs, so its
/// absence is an error; any other unavailable isolation is recorded.
fn plan(opts: &BenchOptions, factory: &BackendFactory<'_>) -> Result<Plan, BenchError> {
    // Peers first: isolab's container start uses the peers' root filesystem.
    let peer_set = if opts.peers {
        Some(prepare_peers(opts.timeout, opts.oci_runtime.clone())?)
    } else {
        None
    };
    let mut subjects: Vec<Subject> = Vec::new();
    let mut unsupported: Vec<SubjectStatus> = Vec::new();
    for &kind in &opts.isolations {
        match factory(kind, &isolation::BackendOptions::default()) {
            Ok(backend) => subjects.push(Subject {
                kind,
                backend,
                start_backend: start_backend(kind, peer_set.as_ref(), factory),
            }),
            Err(e) => {
                let reason = match e {
                    IsolationError::Unsupported { reason, .. } => reason,
                    other => other.to_string(),
                };
                if kind == IsolationKind::Native {
                    return Err(BenchError::NoBaseline(reason));
                }
                unsupported.push(SubjectStatus {
                    name: kind.name().into(),
                    role: "isolation".into(),
                    status: Status::Unsupported,
                    reason: Some(reason),
                    version: None,
                });
            }
        }
    }
    let peers = peer_set
        .as_ref()
        .map(|s| s.runners.clone())
        .unwrap_or_default();
    Ok(Plan {
        subjects,
        unsupported,
        peer_set,
        peers,
    })
}

/// Builds the peers' bundle and tries each peer once. QEMU boots isolab's
/// tiny guest image, so why that image is missing becomes QEMU's reason.
fn prepare_peers(timeout: Duration, oci_runtime: Option<PathBuf>) -> Result<PeerSet, BenchError> {
    let (tiny_image, image_error) = match isolation::artifacts::tiny_guest_image() {
        Ok(p) => (Some(p), None),
        Err(e) => (None, Some(e.to_string())),
    };
    Ok(peers::prepare(&PeerOptions {
        tiny_image,
        image_error,
        timeout,
        oci_runtime,
    })?)
}

/// The backend for isolab's side of a start comparison with the peers: the
/// container in the peers' root filesystem (like for like), or the tiny
/// guest. Without peers, or if it cannot be made, there is no comparison.
fn start_backend(
    kind: IsolationKind,
    peer_set: Option<&PeerSet>,
    factory: &BackendFactory<'_>,
) -> Option<Box<dyn Isolation>> {
    let set = peer_set?;
    match kind {
        IsolationKind::Container => {
            let o = isolation::BackendOptions {
                rootfs: Some(set.rootfs()),
                ..Default::default()
            };
            factory(kind, &o).ok()
        }
        IsolationKind::VmTiny => factory(kind, &isolation::BackendOptions::default()).ok(),
        _ => None,
    }
}

/// The directory every `io` probe writes in: the one given, or a fresh
/// temporary one that is removed when this is dropped.
struct IoDir {
    path: PathBuf,
    /// Held, never read: dropping it removes the temporary directory.
    _temp: Option<tempfile::TempDir>,
}

impl IoDir {
    fn prepare(given: Option<&PathBuf>) -> Result<IoDir, BenchError> {
        let (path, temp) = match given {
            Some(d) => (d.clone(), None),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("isolab-io-")
                    .tempdir()
                    .map_err(|source| BenchError::IoDir {
                        path: std::env::temp_dir(),
                        source,
                    })?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        if !path.is_dir() {
            return Err(BenchError::IoDir {
                path,
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "not an existing directory",
                ),
            });
        }
        Ok(IoDir { path, _temp: temp })
    }
}

/// Who ran, as a failure is keyed: an isolation or a peer (by name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Runner {
    Isolation(IsolationKind),
    Peer(String),
}

impl std::fmt::Display for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Runner::Isolation(kind) => f.write_str(kind.name()),
            Runner::Peer(name) => f.write_str(name),
        }
    }
}

/// The kind of run a task is. The order (derived) is the order a
/// subject's errors are listed in its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    BootIdle,
    Probes,
    Start,
}

impl Phase {
    fn label(self) -> &'static str {
        match self {
            Phase::BootIdle => "boot+idle",
            Phase::Probes => "probes",
            Phase::Start => "start",
        }
    }
}

/// What a failure is remembered by: a run that failed once is not run
/// again. Shown as `<runner> <phase>` in progress, notes and reasons.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct FailureKey {
    runner: Runner,
    phase: Phase,
}

impl std::fmt::Display for FailureKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.runner, self.phase.label())
    }
}

/// Everything the rounds need, fixed before the first one.
struct Matrix<'a> {
    subjects: &'a [Subject],
    peers: &'a [PeerRunner],
    /// The order of one round; identical in every round.
    order: Vec<Task>,
    limits: Limits,
    idle_args: Vec<String>,
    probes_args: Vec<String>,
}

/// What the rounds produced.
#[derive(Default)]
struct Measurements {
    collector: Collector,
    /// The first error of every run that failed.
    failed: BTreeMap<FailureKey, String>,
    notes: Vec<String>,
}

impl<'a> Matrix<'a> {
    fn new(opts: &BenchOptions, plan: &'a Plan, io_dir: &std::path::Path) -> Matrix<'a> {
        let mut probes_args = opts.probes.clone();
        probes_args.extend(opts.workload_args.iter().cloned());
        let idle_ms = if opts.quick { "100" } else { "300" };
        Matrix {
            subjects: &plan.subjects,
            peers: &plan.peers,
            order: round_order(&plan.subjects, &plan.peers),
            limits: Limits {
                timeout: opts.timeout,
                io_target: Some(io_dir.to_path_buf()),
                ..Limits::default()
            },
            idle_args: ["idle", "--idle-ms", idle_ms].map(String::from).to_vec(),
            probes_args,
        }
    }

    /// The warm-up rounds, then the measured ones, each running every task
    /// in order; a run that fails is recorded and skipped from then on.
    fn run_rounds(self, opts: &BenchOptions, progress: &Progress) -> Measurements {
        let total_rounds = opts.warmup + opts.rounds;
        progress.start(u64::from(total_rounds) * self.order.len() as u64);
        let mut m = Measurements::default();
        let mut seq = 1u64;
        for round_all in 0..total_rounds {
            // Warm-up rounds run like the others; their samples are discarded.
            let measured = round_all.checked_sub(opts.warmup);
            for &task in &self.order {
                let key = self.failure_key(task);
                progress.step(format!("round {}/{total_rounds}: {key}", round_all + 1));
                if m.failed.contains_key(&key) {
                    continue;
                }
                let t0 = Instant::now();
                let outcome = self.run_task(task, &mut seq);
                let wall = t0.elapsed();
                match outcome {
                    Ok(o) => m.record(&key, task, round_all, measured, wall, o.as_ref()),
                    Err(e) => {
                        tracing::warn!(subject = %key.runner, task = key.phase.label(), error = %e, "run failed; not retried");
                        m.failed.insert(key, e);
                    }
                }
            }
        }
        progress.finish();
        m
    }

    fn failure_key(&self, task: Task) -> FailureKey {
        let (runner, phase) = match task {
            Task::Idle(i) => (Runner::Isolation(self.subjects[i].kind), Phase::BootIdle),
            Task::Probes(i) => (Runner::Isolation(self.subjects[i].kind), Phase::Probes),
            Task::OurStart(i) => (Runner::Isolation(self.subjects[i].kind), Phase::Start),
            Task::Peer(p) => (Runner::Peer(self.peers[p].name.clone()), Phase::Start),
        };
        FailureKey { runner, phase }
    }

    /// Runs one task. A peer yields no outcome, only its wall time.
    fn run_task(&self, task: Task, seq: &mut u64) -> Result<Option<Outcome>, String> {
        let isolated = |backend: &dyn Isolation, inv: Invocation| {
            backend
                .run(&inv, &self.limits)
                .map(Some)
                .map_err(|e| e.to_string())
        };
        match task {
            Task::Idle(i) => isolated(
                &*self.subjects[i].backend,
                Invocation::Probes(self.idle_args.clone()),
            ),
            Task::Probes(i) => isolated(
                &*self.subjects[i].backend,
                Invocation::Probes(self.probes_args.clone()),
            ),
            Task::OurStart(i) => {
                let inv = if self.subjects[i].kind == IsolationKind::Container {
                    Invocation::Program {
                        program: "/bin/true".into(),
                        args: Vec::new(),
                    }
                } else {
                    Invocation::Probes(vec!["ready".into()])
                };
                let backend = self.subjects[i]
                    .start_backend
                    .as_ref()
                    .expect("planned only with a start backend");
                isolated(&**backend, inv)
            }
            Task::Peer(p) => {
                // Each peer run needs a container id of its own.
                *seq += 1;
                self.peers[p]
                    .run_once(*seq)
                    .map(|_| None)
                    .map_err(|e| e.to_string())
            }
        }
    }
}

/// The order of one round: every subject's boot+idle run, every subject's
/// probes, then each start comparison (isolab's side, then its peers).
fn round_order(subjects: &[Subject], peers: &[PeerRunner]) -> Vec<Task> {
    let mut order: Vec<Task> = Vec::new();
    order.extend((0..subjects.len()).map(Task::Idle));
    order.extend((0..subjects.len()).map(Task::Probes));
    for (i, s) in subjects.iter().enumerate() {
        if s.start_backend.is_none() {
            continue;
        }
        let counterpart = if s.kind == IsolationKind::Container {
            Counterpart::Container
        } else {
            Counterpart::VmTiny
        };
        if peers.iter().any(|r| r.counterpart == counterpart) {
            order.push(Task::OurStart(i));
            order.extend(
                peers
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.counterpart == counterpart)
                    .map(|(p, _)| Task::Peer(p)),
            );
        }
    }
    order
}

impl Measurements {
    /// Records a run that returned: its notes, and its samples when the
    /// round is measured (`measured` is its number among those).
    fn record(
        &mut self,
        key: &FailureKey,
        task: Task,
        round_all: u32,
        measured: Option<u32>,
        wall: Duration,
        o: Option<&Outcome>,
    ) {
        let subject = key.runner.to_string();
        if let Some(o) = o {
            if !o.exit.success() {
                let msg = format!(
                    "{key} in round {}: the run ended with {:?} ({})",
                    round_all + 1,
                    o.exit,
                    console_excerpt(o)
                );
                tracing::warn!("{msg}");
                // Capped: a subject failing every round would drown the other notes.
                if !self.notes.contains(&msg) && self.notes.len() < 40 {
                    self.notes.push(msg);
                }
                // A start that did not succeed is not a start time.
                if matches!(task, Task::OurStart(_)) {
                    return;
                }
            }
            self.note_outcome(&subject, task, o);
        }
        if let Some(round) = measured {
            match o {
                Some(o) => collect_outcome(&mut self.collector, &subject, task, round, wall, o),
                None => collect_outcome_wall(&mut self.collector, &subject, round, wall),
            }
        }
    }

    /// Notes a run's own notes, and how idle memory was measured when the
    /// backend reports no whole-process peak RSS; each note once.
    fn note_outcome(&mut self, subject: &str, task: Task, o: &Outcome) {
        if matches!(task, Task::Idle(_))
            && o.accounting.host_peak_rss_bytes.is_none()
            && o.accounting.overhead_bytes.is_some()
            && o.accounting.guest_touched_bytes.is_some()
        {
            let n = format!(
                "{subject}: idle memory is the VMM's overhead plus the guest RAM it touched \
                 (the backend reports no whole-process peak RSS)"
            );
            if !self.notes.contains(&n) {
                self.notes.push(n);
            }
        }
        for n in &o.notes {
            let n = format!("{subject}: {n}");
            if !self.notes.contains(&n) {
                self.notes.push(n);
            }
        }
    }
}

/// Assembles the results: statuses (unsupported isolations, the isolations
/// that ran, the peers), metrics, and ratios of every isolation to native
/// and of isolab's side to each peer.
fn assemble_results(
    opts: &BenchOptions,
    started: Instant,
    environment: Environment,
    plan: &mut Plan,
    m: Measurements,
) -> Results {
    let mut statuses = std::mem::take(&mut plan.unsupported);
    statuses.extend(isolation_statuses(&plan.subjects, &m));
    if let Some(set) = &mut plan.peer_set {
        mark_failed_peers(set, &m.failed);
        statuses.extend(set.statuses.iter().cloned());
    }
    let mut results = Results {
        schema_version: RESULTS_SCHEMA_VERSION,
        label: opts
            .label
            .clone()
            .unwrap_or_else(|| environment.hostname.clone()),
        created: crate::results::now_rfc3339(),
        environment,
        settings: RunSettings {
            quick: opts.quick,
            rounds: opts.rounds,
            warmup: opts.warmup,
            probes: opts.probes.clone(),
            workload_args: opts.workload_args.clone(),
            elapsed_s: started.elapsed().as_secs_f64(),
        },
        subjects: statuses,
        metrics: m.collector.into_metrics(),
        ratios: Vec::new(),
        notes: m.notes,
    };
    for s in plan
        .subjects
        .iter()
        .filter(|s| s.kind != IsolationKind::Native)
    {
        results.add_ratios(s.kind.name(), "native");
    }
    for r in &plan.peers {
        results.add_ratios(r.counterpart.subject(), &r.name);
    }
    // The same front end with isolab against runc as its runtime.
    results.add_ratios(PODMAN_OURS, PODMAN_RUNC);
    results
}

/// Every isolation that ran gets a status: measured if it has any sample
/// besides a start time; failures are listed with their first error.
fn isolation_statuses(subjects: &[Subject], m: &Measurements) -> Vec<SubjectStatus> {
    subjects
        .iter()
        .map(|s| {
            let name = s.kind.name();
            let errors: Vec<String> = m
                .failed
                .iter()
                .filter(|(k, _)| k.runner == Runner::Isolation(s.kind))
                .map(|(k, e)| format!("{k}: {e}"))
                .collect();
            let any_sample = m
                .collector
                .samples
                .keys()
                .any(|k| k.subject == name && k.probe != "start");
            SubjectStatus {
                name: name.into(),
                role: "isolation".into(),
                status: if any_sample {
                    Status::Measured
                } else {
                    Status::Failed
                },
                reason: (!errors.is_empty()).then(|| errors.join("; ")),
                version: None,
            }
        })
        .collect()
}

/// podman with isolab as its runtime, and with runc: their start ratio is
/// reported (isolab's target is at most 1.0×).
const PODMAN_OURS: &str = "podman-isolab";
/// See [`PODMAN_OURS`].
const PODMAN_RUNC: &str = "podman-runc";

/// Marks the peers that stopped working mid-run as failed, with their error.
fn mark_failed_peers(set: &mut PeerSet, failed: &BTreeMap<FailureKey, String>) {
    for (key, e) in failed {
        if let Runner::Peer(name) = &key.runner {
            set.mark_failed(name, e);
        }
    }
}

fn collect_outcome_wall(c: &mut Collector, subject: &str, round: u32, wall: Duration) {
    c.add(
        key(subject, "start", "wall_ms", None),
        "ms",
        round,
        ms(wall),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direction_of_metrics() {
        assert_eq!(better_for("ops_per_s", "blocks/s"), Better::Higher);
        assert_eq!(better_for("rand_read_iops", "IOPS"), Better::Higher);
        assert_eq!(better_for("round_trip_ns", "ns"), Better::Lower);
        assert_eq!(better_for("fsync_p50_us", "us"), Better::Lower);
        assert_eq!(better_for("copy_gb_per_s", "GB/s"), Better::Higher);
    }

    #[test]
    fn zero_rounds_is_refused() {
        let opts = BenchOptions {
            rounds: 0,
            ..BenchOptions::quick()
        };
        assert!(matches!(
            run(&opts, &Progress::hidden()),
            Err(BenchError::NoRounds(0))
        ));
    }

    use std::cell::RefCell;
    use std::rc::Rc;

    use isolation::{Accounting, BootTimes, Exit};
    use workload::schema::{PlatformKind, ResultLine};

    /// A stand-in backend: deterministic values scaled by `factor`, every call logged.
    struct Fake {
        kind: IsolationKind,
        factor: f64,
        fail_probes: bool,
        log: Rc<RefCell<Vec<String>>>,
    }

    impl Isolation for Fake {
        fn kind(&self) -> IsolationKind {
            self.kind
        }

        fn run(&self, inv: &Invocation, _limits: &Limits) -> Result<Outcome, IsolationError> {
            let Invocation::Probes(args) = inv else {
                panic!("the matrix only runs probes without peers")
            };
            self.log
                .borrow_mut()
                .push(format!("{} {}", self.kind, args[0]));
            if self.fail_probes && args[0] != "idle" {
                return Err(IsolationError::BadInput("fake failure".into()));
            }
            let n = self.log.borrow().len() as f64;
            let line = |probe: &str, metric: &str, unit: &str, value: f64| ResultLine {
                schema: 1,
                probe: probe.into(),
                metric: metric.into(),
                value,
                unit: unit.into(),
                samples: vec![value],
                platform: PlatformKind::Linux,
                checksum: None,
                kind: None,
                extra: Default::default(),
            };
            let results = if args[0] == "idle" {
                vec![line("idle", "slept_ms", "ms", 100.0)]
            } else {
                // Slight drift with call count, identical in relative terms for both kinds.
                vec![line(
                    "cpu",
                    "ops_per_s",
                    "blocks/s",
                    1000.0 * self.factor * (1.0 + n / 1000.0),
                )]
            };
            Ok(Outcome {
                kind: self.kind,
                exit: Exit::Exited { code: 0 },
                boot: Some(BootTimes {
                    total: Duration::from_millis((2.0 / self.factor) as u64),
                    setup: None,
                    kernel: None,
                    init: None,
                }),
                results,
                stdout: Vec::new(),
                console: Vec::new(),
                accounting: Accounting {
                    host_peak_rss_bytes: Some((4.0 / self.factor) as u64 * 1024 * 1024),
                    ..Default::default()
                },
                notes: Vec::new(),
            })
        }
    }

    fn options(rounds: u32) -> BenchOptions {
        BenchOptions {
            rounds,
            warmup: 1,
            peers: false,
            label: Some("fake".into()),
            ..BenchOptions::quick()
        }
    }

    #[test]
    fn interleaves_rounds_pairs_ratios_and_records_unsupported() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let factory = |kind: IsolationKind,
                       _: &isolation::BackendOptions|
         -> Result<Box<dyn Isolation>, IsolationError> {
            let factor = match kind {
                IsolationKind::Native => 1.0,
                IsolationKind::Container => 0.5,
                _ => {
                    return Err(IsolationError::Unsupported {
                        kind,
                        reason: format!("no {kind} in this test"),
                    });
                }
            };
            Ok(Box::new(Fake {
                kind,
                factor,
                fail_probes: false,
                log: log.clone(),
            }))
        };
        let r = run_with(&options(4), &Progress::hidden(), &factory).unwrap();

        let calls = log.borrow().clone();
        assert_eq!(calls.len(), 5 * 4, "warm-up + 4 rounds, 4 runs each");
        assert_eq!(
            calls[..4],
            [
                "native idle",
                "container idle",
                "native cpu",
                "container cpu"
            ]
        );
        assert_eq!(
            calls[4..8],
            calls[..4],
            "every round runs in the same order"
        );

        let cpu = r.metric("native", "cpu", "ops_per_s", None).unwrap();
        assert_eq!(cpu.summary.n, 4, "warm-up samples are discarded");
        assert_eq!(cpu.rounds, [0, 1, 2, 3]);
        let ratio = r
            .ratio("container", "native", "cpu", "ops_per_s", None)
            .unwrap();
        // Paired within a round the drift cancels almost exactly: 0.5 × (1+n/1000)/(1+(n-1)/1000).
        assert!(
            (ratio.summary.median - 0.5).abs() < 0.001,
            "{:?}",
            ratio.summary
        );
        assert!(
            r.ratio("container", "native", "boot", "total_ms", None)
                .is_some()
        );
        assert!(
            r.metric("container", "memory", "idle_peak_rss_mib", None)
                .is_some()
        );

        let vm = r.subjects.iter().find(|s| s.name == "vm-tiny").unwrap();
        assert_eq!(vm.status, Status::Unsupported);
        assert_eq!(vm.reason.as_deref(), Some("no vm-tiny in this test"));
        assert!(r.validate().is_ok());
    }

    #[test]
    fn a_failing_isolation_is_recorded_not_dropped_and_not_retried() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let factory = |kind: IsolationKind,
                       _: &isolation::BackendOptions|
         -> Result<Box<dyn Isolation>, IsolationError> {
            match kind {
                IsolationKind::Native | IsolationKind::Container => Ok(Box::new(Fake {
                    kind,
                    factor: 1.0,
                    fail_probes: kind == IsolationKind::Container,
                    log: log.clone(),
                })),
                _ => Err(IsolationError::Unsupported {
                    kind,
                    reason: "not here".into(),
                }),
            }
        };
        let r = run_with(&options(3), &Progress::hidden(), &factory).unwrap();
        let container = r.subjects.iter().find(|s| s.name == "container").unwrap();
        assert!(
            container
                .reason
                .as_deref()
                .unwrap()
                .contains("fake failure"),
            "{container:?}"
        );
        assert!(r.metric("container", "cpu", "ops_per_s", None).is_none());
        let failed_calls = log
            .borrow()
            .iter()
            .filter(|c| *c == "container cpu")
            .count();
        assert_eq!(
            failed_calls, 1,
            "a run that errs is not retried every round"
        );
    }

    #[test]
    fn no_native_baseline_is_an_error() {
        let factory = |kind: IsolationKind,
                       _: &isolation::BackendOptions|
         -> Result<Box<dyn Isolation>, IsolationError> {
            Err(IsolationError::Unsupported {
                kind,
                reason: "nothing works".into(),
            })
        };
        let err = run_with(&options(2), &Progress::hidden(), &factory).unwrap_err();
        assert!(
            matches!(err, BenchError::NoBaseline(ref r) if r == "nothing works"),
            "{err}"
        );
    }

    #[test]
    fn plan_keeps_order_and_records_why_an_isolation_cannot_run() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let factory = |kind: IsolationKind,
                       _: &isolation::BackendOptions|
         -> Result<Box<dyn Isolation>, IsolationError> {
            match kind {
                IsolationKind::Container => Err(IsolationError::BadInput("broken".into())),
                IsolationKind::VmTiny => Err(IsolationError::Unsupported {
                    kind,
                    reason: "no KVM".into(),
                }),
                _ => Ok(Box::new(Fake {
                    kind,
                    factor: 1.0,
                    fail_probes: false,
                    log: log.clone(),
                })),
            }
        };
        let p = plan(&options(1), &factory).unwrap();
        let kinds: Vec<IsolationKind> = p.subjects.iter().map(|s| s.kind).collect();
        assert_eq!(kinds, [IsolationKind::Native, IsolationKind::VmLinux]);
        assert!(p.subjects.iter().all(|s| s.start_backend.is_none()));
        assert!(p.peer_set.is_none() && p.peers.is_empty());
        let unsupported: Vec<(&str, Option<&str>, Status)> = p
            .unsupported
            .iter()
            .map(|s| (s.name.as_str(), s.reason.as_deref(), s.status.clone()))
            .collect();
        // An error other than `Unsupported` is the reason as it displays.
        let broken = IsolationError::BadInput("broken".into()).to_string();
        assert_eq!(
            unsupported,
            [
                ("container", Some(broken.as_str()), Status::Unsupported),
                ("vm-tiny", Some("no KVM"), Status::Unsupported),
            ]
        );
        assert!(log.borrow().is_empty(), "planning runs nothing");
    }

    #[test]
    fn failure_keys_sort_and_display_as_their_text_did() {
        let keys = [Phase::Start, Phase::BootIdle, Phase::Probes].map(|phase| FailureKey {
            runner: Runner::Isolation(IsolationKind::VmTiny),
            phase,
        });
        let mut typed = keys.to_vec();
        typed.sort();
        let typed: Vec<String> = typed.iter().map(ToString::to_string).collect();
        let mut text: Vec<String> = keys.iter().map(ToString::to_string).collect();
        text.sort();
        assert_eq!(
            typed, text,
            "a subject's errors are listed in the same order"
        );
        assert_eq!(typed[0], "vm-tiny boot+idle");
        let peer = FailureKey {
            runner: Runner::Peer("qemu-microvm".into()),
            phase: Phase::Start,
        };
        assert_eq!(peer.to_string(), "qemu-microvm start");
    }
}
