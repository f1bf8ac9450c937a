//! Soak and concurrency: many runs of each isolation in a row, then a wave of
//! concurrent mixed runs, counting failures and whatever the runs leave in
//! this process or on the host (`isolab bench --soak`).
//!
//! Each isolation runs the workload's `ready` probe (the cheapest complete
//! run: start, print one result line, exit). Before counting, one warm-up run
//! of each kind and one warm-up concurrent wave let the process reach its
//! steady state (allocator arenas, cached artifacts, the KVM CPUID cache), so
//! what is counted afterwards is growth the runs caused, not first-use cost.
//!
//! Counted, per phase, as the difference between a snapshot after and one
//! before: child processes and threads of this process, its open fds, mounts
//! in its mount namespace, its memory mappings, cgroups named after it
//! (`isolab-<pid>-…` in every hierarchy) and temp files named after it.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use isolation::{self, Invocation, Isolation, IsolationKind, Limits};

/// What to soak.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoakOptions {
    /// Sequential runs per isolation.
    pub runs: u32,
    /// Runs started at once in the concurrent wave (kinds taken round robin); 0 skips it.
    pub concurrency: u32,
    /// Isolations to soak; ones this host cannot run are reported as skipped.
    pub kinds: Vec<IsolationKind>,
}

impl Default for SoakOptions {
    fn default() -> Self {
        SoakOptions {
            runs: 1000,
            concurrency: 16,
            kinds: vec![
                IsolationKind::Native,
                IsolationKind::Container,
                IsolationKind::VmTiny,
            ],
        }
    }
}

/// Resources of this process (and what it names on the host) at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Child processes.
    pub processes: i64,
    /// Threads of this process.
    pub threads: i64,
    /// Open file descriptors.
    pub fds: i64,
    /// Mounts visible to this process.
    pub mounts: i64,
    /// Cgroup directories named after this process.
    pub cgroups: i64,
    /// Memory mappings.
    pub mappings: i64,
    /// Temp files and directories named after this process.
    pub temp_files: i64,
}

impl Snapshot {
    /// Takes a snapshot now.
    pub fn take() -> Snapshot {
        let me = std::process::id() as i32;
        let processes = std::fs::read_dir("/proc")
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
                    .filter(|stat| {
                        // Field 4, after the parenthesised command, is the parent pid.
                        stat.rsplit_once(')')
                            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                            .and_then(|p| p.parse::<i32>().ok())
                            == Some(me)
                    })
                    .count() as i64
            })
            .unwrap_or(0);
        let prefix = format!("isolab-{me}-");
        let cgroups = hostcaps::cgroup::mounts()
            .iter()
            .map(|m| count_entries(&m.path, |n| n.starts_with(&prefix)))
            .sum();
        let temp_files = count_entries(&std::env::temp_dir(), |n| {
            isolation::clean::owner_pid(n) == Some(me)
        });
        Snapshot {
            processes,
            threads: count_entries(Path::new("/proc/self/task"), |_| true),
            fds: count_entries(Path::new("/proc/self/fd"), |_| true),
            mounts: lines("/proc/self/mountinfo"),
            cgroups,
            mappings: lines("/proc/self/maps"),
            temp_files,
        }
    }

    /// `self - before`, field by field.
    pub fn minus(&self, before: &Snapshot) -> Snapshot {
        Snapshot {
            processes: self.processes - before.processes,
            threads: self.threads - before.threads,
            fds: self.fds - before.fds,
            mounts: self.mounts - before.mounts,
            cgroups: self.cgroups - before.cgroups,
            mappings: self.mappings - before.mappings,
            temp_files: self.temp_files - before.temp_files,
        }
    }

    /// Sum of the positive fields: how much grew.
    pub fn growth(&self) -> i64 {
        [
            self.processes,
            self.threads,
            self.fds,
            self.mounts,
            self.cgroups,
            self.mappings,
            self.temp_files,
        ]
        .iter()
        .map(|v| (*v).max(0))
        .sum()
    }
}

fn count_entries(dir: &Path, pred: impl Fn(&str) -> bool) -> i64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| pred(&e.file_name().to_string_lossy()))
                .count() as i64
        })
        .unwrap_or(0)
}

fn lines(path: &str) -> i64 {
    std::fs::read_to_string(path)
        .map(|s| s.lines().count() as i64)
        .unwrap_or(0)
}

/// The sequential phase of one isolation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KindReport {
    /// The isolation.
    pub kind: IsolationKind,
    /// Why it was not soaked on this host, if it was not.
    pub skipped: Option<String>,
    /// Runs made.
    pub runs: u32,
    /// Runs that returned an error or did not exit with status 0.
    pub failures: u32,
    /// The first few failures, explained.
    pub failure_samples: Vec<String>,
    /// What grew over the phase (after minus before).
    pub leaks: Snapshot,
    /// Wall time of the phase, seconds.
    pub seconds: f64,
}

/// The concurrent wave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConcurrentReport {
    /// Runs started at once.
    pub runs: u32,
    /// Their kinds, in start order.
    pub kinds: Vec<IsolationKind>,
    /// Runs that returned an error or did not exit with status 0.
    pub failures: u32,
    /// The first few failures, explained.
    pub failure_samples: Vec<String>,
    /// What grew over the wave.
    pub leaks: Snapshot,
    /// Wall time of the wave, seconds.
    pub seconds: f64,
}

/// Everything a soak found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoakReport {
    /// What was asked.
    pub options: SoakOptions,
    /// One entry per requested isolation.
    pub kinds: Vec<KindReport>,
    /// The concurrent wave, if any ran.
    pub concurrent: Option<ConcurrentReport>,
}

impl SoakReport {
    /// All failures of all phases.
    pub fn failures(&self) -> u32 {
        self.kinds.iter().map(|k| k.failures).sum::<u32>()
            + self.concurrent.as_ref().map_or(0, |c| c.failures)
    }

    /// All growth of all phases.
    pub fn leaks(&self) -> i64 {
        self.kinds.iter().map(|k| k.leaks.growth()).sum::<i64>()
            + self.concurrent.as_ref().map_or(0, |c| c.leaks.growth())
    }

    /// True when no phase failed and nothing grew, allowing the concurrent
    /// wave [`ARENA_MAPPINGS_SLACK`] new mappings (allocator arenas).
    pub fn clean(&self) -> bool {
        let wave_ok = self.concurrent.as_ref().is_none_or(|c| {
            let l = Snapshot {
                mappings: c.leaks.mappings - ARENA_MAPPINGS_SLACK,
                ..c.leaks
            };
            c.failures == 0 && l.growth() == 0
        });
        wave_ok
            && self
                .kinds
                .iter()
                .all(|k| k.failures == 0 && k.leaks.growth() == 0)
    }
}

/// Concurrent waves run before counting starts.
const WARMUP_WAVES: usize = 2;

/// Memory mappings a concurrent wave may add without leaking anything: glibc
/// gives threads that contend for the allocator new arenas (two mappings
/// each, up to eight per CPU) and keeps them for the life of the process.
/// Growth that does not saturate, i.e. a real leak, exceeds this quickly.
pub const ARENA_MAPPINGS_SLACK: i64 = 8;

/// How many failures are described in a report.
const SAMPLES: usize = 5;

fn invocation() -> Invocation {
    // No probes: the workload prints its ready line and exits.
    Invocation::Probes(workload::args::Config::default())
}

fn limits() -> Limits {
    Limits {
        timeout: Duration::from_secs(60),
        ..Limits::default()
    }
}

/// One run; `Err` explains a failure.
fn once(backend: &dyn Isolation) -> Result<(), String> {
    match backend.run(&invocation(), &limits()) {
        Ok(o) if o.exit.success() => Ok(()),
        Ok(o) => Err(format!(
            "{}: {:?}: {}",
            backend.kind(),
            o.exit,
            String::from_utf8_lossy(&o.console).trim()
        )),
        Err(e) => Err(format!("{}: {e}", backend.kind())),
    }
}

type Shared = Arc<dyn Isolation + Send + Sync>;

fn backend(kind: IsolationKind) -> Result<Shared, String> {
    // The trait objects `isolation::backend` returns are not `Sync`; build the
    // concrete ones (plain configuration) so threads can share them.
    isolation::backend(kind).map_err(|e| e.to_string())?;
    Ok(match kind {
        IsolationKind::Native => Arc::new(isolation::native::Native::new()),
        IsolationKind::Container => Arc::new(isolation::container::Container::new()),
        IsolationKind::VmTiny => Arc::new(isolation::vm_tiny::VmTiny::new()),
        IsolationKind::VmLinux => Arc::new(isolation::vm_linux::VmLinux::new()),
    })
}

fn wave(backends: &[(IsolationKind, Shared)], n: u32) -> (Vec<IsolationKind>, Vec<String>) {
    let picks: Vec<(IsolationKind, Shared)> = (0..n as usize)
        .map(|i| backends[i % backends.len()].clone())
        .collect();
    let kinds = picks.iter().map(|(k, _)| *k).collect();
    let barrier = Arc::new(std::sync::Barrier::new(picks.len()));
    let handles: Vec<_> = picks
        .into_iter()
        .map(|(_, b)| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                once(b.as_ref())
            })
        })
        .collect();
    let errors = handles
        .into_iter()
        .filter_map(|h| match h.join() {
            Ok(r) => r.err(),
            Err(_) => Some("a run panicked".to_string()),
        })
        .collect();
    (kinds, errors)
}

/// Runs the soak. Progress goes to the `tracing` log; the report has the figures.
pub fn run(opts: &SoakOptions) -> SoakReport {
    let mut kinds = Vec::new();
    let mut ready: Vec<(IsolationKind, Shared)> = Vec::new();
    for &kind in &opts.kinds {
        match backend(kind).and_then(|b| once(b.as_ref()).map(|()| b)) {
            Ok(b) => ready.push((kind, b)),
            Err(reason) => kinds.push(KindReport {
                kind,
                skipped: Some(reason),
                runs: 0,
                failures: 0,
                failure_samples: Vec::new(),
                leaks: Snapshot::default(),
                seconds: 0.0,
            }),
        }
    }
    if opts.concurrency > 0 && !ready.is_empty() {
        // Warm-up waves: threads' allocator arenas come into being here.
        for _ in 0..WARMUP_WAVES {
            let _ = wave(&ready, opts.concurrency);
        }
    }
    for (kind, b) in &ready {
        let before = Snapshot::take();
        let t = Instant::now();
        let mut failures = 0;
        let mut samples = Vec::new();
        for i in 0..opts.runs {
            if let Err(e) = once(b.as_ref()) {
                failures += 1;
                if samples.len() < SAMPLES {
                    samples.push(format!("run {i}: {e}"));
                }
            }
        }
        let leaks = Snapshot::take().minus(&before);
        tracing::info!(%kind, runs = opts.runs, failures, ?leaks, "soak phase done");
        kinds.push(KindReport {
            kind: *kind,
            skipped: None,
            runs: opts.runs,
            failures,
            failure_samples: samples,
            leaks,
            seconds: t.elapsed().as_secs_f64(),
        });
    }
    kinds.sort_by_key(|k| opts.kinds.iter().position(|x| *x == k.kind));
    let concurrent = (opts.concurrency > 0 && !ready.is_empty()).then(|| {
        let before = Snapshot::take();
        let t = Instant::now();
        let (kinds, errors) = wave(&ready, opts.concurrency);
        let leaks = Snapshot::take().minus(&before);
        ConcurrentReport {
            runs: opts.concurrency,
            kinds,
            failures: errors.len() as u32,
            failure_samples: errors.into_iter().take(SAMPLES).collect(),
            leaks,
            seconds: t.elapsed().as_secs_f64(),
        }
    });
    SoakReport {
        options: opts.clone(),
        kinds,
        concurrent,
    }
}

fn leak_cells(l: &Snapshot) -> String {
    format!(
        "{} | {} | {} | {} | {} | {} | {}",
        l.processes, l.threads, l.fds, l.mounts, l.cgroups, l.mappings, l.temp_files
    )
}

/// The report as a Markdown table (one row per phase), then the failures.
pub fn render(r: &SoakReport) -> String {
    let mut s = String::from(
        "| phase | runs | failures | seconds | processes | threads | fds | mounts | cgroups | mappings | temp files |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    let mut notes = Vec::new();
    for k in &r.kinds {
        match &k.skipped {
            Some(why) => notes.push(format!("{}: skipped: {why}", k.kind)),
            None => {
                s.push_str(&format!(
                    "| {} sequential | {} | {} | {:.1} | {} |\n",
                    k.kind,
                    k.runs,
                    k.failures,
                    k.seconds,
                    leak_cells(&k.leaks)
                ));
                notes.extend(k.failure_samples.iter().map(|f| format!("{}: {f}", k.kind)));
            }
        }
    }
    if let Some(c) = &r.concurrent {
        let mix: Vec<&str> = c.kinds.iter().map(|k| k.name()).collect();
        s.push_str(&format!(
            "| concurrent ({}) | {} | {} | {:.1} | {} |\n",
            mix.join(", "),
            c.runs,
            c.failures,
            c.seconds,
            leak_cells(&c.leaks)
        ));
        notes.extend(c.failure_samples.iter().map(|f| format!("concurrent: {f}")));
    }
    s.push_str(&format!(
        "\nLeak columns are growth over the phase (after minus before; 0 is clean). Total failures {}, total growth {}.\n",
        r.failures(),
        r.leaks()
    ));
    for n in notes {
        s.push_str(&format!("- {n}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minus_and_growth() {
        let a = Snapshot {
            fds: 10,
            mappings: 100,
            ..Snapshot::default()
        };
        let b = Snapshot {
            fds: 12,
            mappings: 99,
            temp_files: 1,
            ..Snapshot::default()
        };
        let d = b.minus(&a);
        assert_eq!((d.fds, d.mappings, d.temp_files), (2, -1, 1));
        assert_eq!(d.growth(), 3);
    }

    /// The snapshot counts the whole test process, whose other tests open
    /// and close fds and children concurrently: a few tries absorb that.
    #[test]
    fn snapshot_sees_an_fd_and_a_child() {
        let mut seen = Vec::new();
        for _ in 0..20 {
            let before = Snapshot::take();
            let f = std::fs::File::open("/proc/self/stat").unwrap();
            let mut child = std::process::Command::new("/bin/sleep")
                .arg("5")
                .spawn()
                .unwrap();
            let during = Snapshot::take().minus(&before);
            child.kill().unwrap();
            child.wait().unwrap();
            drop(f);
            if during.fds >= 1 && during.processes >= 1 {
                return;
            }
            seen.push(during);
        }
        panic!("never saw the fd and the child: {seen:?}");
    }

    #[test]
    fn render_names_every_phase_and_skips() {
        let r = SoakReport {
            options: SoakOptions::default(),
            kinds: vec![
                KindReport {
                    kind: IsolationKind::Native,
                    skipped: None,
                    runs: 3,
                    failures: 1,
                    failure_samples: vec!["run 2: boom".into()],
                    leaks: Snapshot {
                        fds: 1,
                        ..Snapshot::default()
                    },
                    seconds: 0.5,
                },
                KindReport {
                    kind: IsolationKind::VmLinux,
                    skipped: Some("no hardware KVM".into()),
                    runs: 0,
                    failures: 0,
                    failure_samples: vec![],
                    leaks: Snapshot::default(),
                    seconds: 0.0,
                },
            ],
            concurrent: Some(ConcurrentReport {
                runs: 2,
                kinds: vec![IsolationKind::Native, IsolationKind::Native],
                failures: 0,
                failure_samples: vec![],
                leaks: Snapshot::default(),
                seconds: 0.1,
            }),
        };
        let text = render(&r);
        assert!(
            text.contains("| native sequential | 3 | 1 | 0.5 | 0 | 0 | 1 |"),
            "{text}"
        );
        assert!(
            text.contains("vm-linux: skipped: no hardware KVM"),
            "{text}"
        );
        assert!(text.contains("run 2: boom"), "{text}");
        assert!(text.contains("concurrent (native, native)"), "{text}");
        assert_eq!((r.failures(), r.leaks()), (1, 1));
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<SoakReport>(&json).unwrap(), r);
    }
}
