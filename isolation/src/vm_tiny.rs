//! The tiny guest on our VMM: the workload core on a bare platform inside a
//! KVM micro VM, with a temporary file as its virtio-blk disk for the `io`
//! probe.

use std::path::PathBuf;

use microvm::outcome::DiskMode;
use workload::args::Config;
use workload::schema::ResultLine;

use super::disk::{Disk, io_request, prepare_disk, seen_as};
use super::{
    Accounting, BootTimes, Exit, Invocation, Isolation, IsolationError, IsolationKind, Limits,
    Outcome, parse_results,
};
use crate::artifacts;

/// Why the tiny guest has no `net` row.
pub const TINY_NO_NET: &str = "the tiny guest has no NIC driver (it drives only the isolab ports \
     and a polling virtio-blk; a polling virtio-net driver plus a TCP/IP stack is more than this \
     freestanding image carries)";

/// Guest RAM when the limits do not say (the Guest ABI's default).
pub const DEFAULT_MEMORY: u64 = 128 << 20;

/// Runs the isolab probes in the freestanding tiny guest on our VMM.
#[derive(Debug, Clone, Default)]
pub struct VmTiny {
    image: Option<PathBuf>,
}

impl VmTiny {
    /// A runner using the built tiny guest image (see [`artifacts::tiny_guest_image`]).
    pub fn new() -> VmTiny {
        VmTiny { image: None }
    }

    /// A runner using this guest image instead of the built one.
    pub fn with_image(image: impl Into<PathBuf>) -> VmTiny {
        VmTiny {
            image: Some(image.into()),
        }
    }

    fn image(&self) -> Result<PathBuf, IsolationError> {
        match &self.image {
            Some(p) => Ok(p.clone()),
            None => {
                artifacts::tiny_guest_image().map_err(|e| IsolationError::BadInput(e.to_string()))
            }
        }
    }
}

/// The guest's command line: the configuration's arguments, space
/// separated. The guest's io target is its disk, whatever the host's was.
fn cmdline(cfg: &Config) -> Result<String, IsolationError> {
    let probes = seen_as(cfg, None).to_args();
    if let Some(bad) = probes.iter().find(|a| a.chars().any(char::is_whitespace)) {
        return Err(IsolationError::BadInput(format!(
            "the tiny guest splits its arguments at spaces, so {bad:?} cannot be passed"
        )));
    }
    Ok(probes.join(" "))
}

/// Maps how the VM stopped to how the run ended.
fn exit_of(exit: &microvm::VmExit) -> Exit {
    match exit {
        microvm::VmExit::GuestExit { code } => Exit::Exited { code: *code as i32 },
        microvm::VmExit::Timeout => Exit::Timeout,
        other => Exit::VmStopped {
            detail: other.explain(),
        },
    }
}

/// Things worth telling the user about a finished run.
fn run_notes(outcome: &microvm::VmOutcome, disk: Option<&Disk>) -> Vec<String> {
    let mut notes = Vec::new();
    let s = &outcome.stats;
    if s.stray_io > 0 {
        notes.push(format!(
            "the guest made {} I/O accesses no device accepted",
            s.stray_io
        ));
    }
    if s.blk_bad_requests > 0 {
        notes.push(format!(
            "virtio-blk refused {} malformed requests",
            s.blk_bad_requests
        ));
    }
    if s.dropped_output > 0 {
        notes.push(format!(
            "{} bytes of guest output were dropped (capture buffer full)",
            s.dropped_output
        ));
    }
    let Some(what) = disk.map(Disk::describe) else {
        return notes;
    };
    let how = match s.disk_mode {
        Some(DiskMode::Direct) if s.blk_buffered_bytes == 0 => {
            "the VMM opened it with O_DIRECT, bypassing the host page cache".to_string()
        }
        Some(DiskMode::Direct) => format!(
            "the VMM opened it with O_DIRECT, bypassing the host page cache, except for {} of {} \
             bytes in unaligned requests, which went through it",
            s.blk_buffered_bytes,
            s.blk_buffered_bytes + s.blk_direct_bytes
        ),
        Some(DiskMode::Buffered) => {
            "its filesystem refused O_DIRECT, so the VMM reads and writes it through the host page \
             cache"
                .to_string()
        }
        None => "the VMM attached no disk".to_string(),
    };
    notes.push(format!("io ran on {what} as the virtio-blk disk; {how}"));
    notes
}

/// Sets the `io` lines' `kind` (and `cache_bypassed`) from how the VMM
/// reached the disk: the guest drives a virtio-blk device and cannot know
/// whether the host page cache sits behind it. Without a disk the lines
/// are left as the guest wrote them.
fn set_io_kind(results: &mut [ResultLine], mode: Option<DiskMode>) {
    let Some(mode) = mode else { return };
    let direct = mode == DiskMode::Direct;
    for line in results.iter_mut().filter(|l| l.probe == "io") {
        line.kind = Some(mode.as_str().to_string());
        line.extra
            .insert("cache_bypassed".into(), serde_json::Value::Bool(direct));
    }
}

impl Isolation for VmTiny {
    fn kind(&self) -> IsolationKind {
        IsolationKind::VmTiny
    }

    fn run(&self, invocation: &Invocation, limits: &Limits) -> Result<Outcome, IsolationError> {
        let cfg = match invocation {
            Invocation::Probes(cfg) => cfg,
            Invocation::Program { program, .. } => {
                return Err(IsolationError::BadInput(format!(
                    "the tiny guest runs only the isolab probes, not programs such as {program:?}; \
                     use the Linux guest or another isolation"
                )));
            }
        };
        // No NIC driver in the tiny guest: the `net` probe is left out, and said so.
        let mut net_note = None;
        let stripped;
        let cfg = match crate::net::without_net(cfg, TINY_NO_NET) {
            None => cfg,
            Some(Ok(rest)) => {
                net_note = Some(format!("net probe not run: {TINY_NO_NET}"));
                stripped = rest;
                &stripped
            }
            Some(Err(reason)) => {
                return Err(IsolationError::Unsupported {
                    kind: IsolationKind::VmTiny,
                    reason,
                });
            }
        };
        let cmdline = cmdline(cfg)?;
        let elf = self.image()?;
        hostcaps::kvm::device_usable().map_err(|reason| IsolationError::Unsupported {
            kind: IsolationKind::VmTiny,
            reason,
        })?;
        let mut notes: Vec<String> = net_note.into_iter().collect();
        if let Some(cpus) = limits.cpus
            && cpus != 1.0
        {
            notes.push(format!(
                "the tiny guest always runs on one vCPU ({cpus} asked)"
            ));
        }
        // Owned here, so the temporary file goes away on every path out.
        let disk = io_request(cfg)
            .map(|(size, target)| prepare_disk(target.as_deref(), size))
            .transpose()?;

        let mut config = microvm::VmConfig::tiny(elf, cmdline);
        config.memory_bytes = limits.memory.unwrap_or(DEFAULT_MEMORY);
        config.timeout = limits.timeout;
        config.disk = disk.as_ref().map(Disk::path);
        tracing::debug!(?config, "vm-tiny: running");
        let outcome = microvm::run(&config)?;

        notes.extend(run_notes(&outcome, disk.as_ref()));
        drop(disk);
        let mut results = parse_results(&outcome.output)?;
        set_io_kind(&mut results, outcome.stats.disk_mode);
        let boot = outcome.timings.ready.map(|total| BootTimes {
            total,
            setup: Some(outcome.timings.setup),
            kernel: None,
            init: None,
        });
        Ok(Outcome {
            kind: IsolationKind::VmTiny,
            exit: exit_of(&outcome.exit),
            boot,
            results,
            stdout: outcome.output,
            console: outcome.serial,
            accounting: Accounting {
                overhead_bytes: Some(outcome.memory.vmm_overhead_bytes),
                guest_touched_bytes: Some(outcome.memory.guest_touched_bytes),
                ..Accounting::default()
            },
            notes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn io_size_and_target_are_taken_from_the_config() {
        let cfg = |a: &[&str]| Config::from_args(a.iter().copied()).unwrap();
        assert_eq!(
            io_request(&cfg(&["io", "--io-size", "8M"])),
            Some((8 << 20, None))
        );
        assert_eq!(
            io_request(&cfg(&["all", "--io-size", "2M", "--io-target", "/d"])),
            Some((2 << 20, Some(PathBuf::from("/d"))))
        );
        assert_eq!(io_request(&cfg(&["cpu", "--io-target", "/d"])), None);
    }

    #[test]
    fn the_guest_sees_its_disk_not_the_host_target() {
        let cfg = |a: &[&str]| Config::from_args(a.iter().copied()).unwrap();
        assert_eq!(
            cmdline(&cfg(&[
                "cpu",
                "io",
                "--io-target",
                "/a b",
                "--io-size",
                "2M"
            ]))
            .unwrap(),
            "cpu io --io-size 2M"
        );
        assert_eq!(
            cmdline(&cfg(&["cpu", "--reps", "3"])).unwrap(),
            "cpu --reps 3"
        );
    }

    #[test]
    fn programs_are_refused_with_a_clear_error() {
        let e = VmTiny::with_image("/nonexistent")
            .run(
                &Invocation::Program {
                    program: "/bin/true".into(),
                    args: vec![],
                },
                &Limits::default(),
            )
            .unwrap_err();
        assert!(matches!(e, IsolationError::BadInput(_)), "{e:?}");
        assert!(e.to_string().contains("only the isolab probes"), "{e}");
    }

    #[test]
    fn temporary_disk_has_the_size_and_no_name() {
        let dir = tempfile::tempdir().unwrap();
        let disk = prepare_disk(Some(dir.path()), 3 << 20).unwrap();
        assert_eq!(std::fs::metadata(disk.path()).unwrap().len(), 3 << 20);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "the disk file has a name"
        );
        let Disk::Temp(file) = &disk else {
            panic!("expected a temporary disk")
        };
        assert_eq!(file.metadata().unwrap().len(), 3 << 20);
    }

    #[test]
    fn missing_io_target_is_bad_input() {
        let e = prepare_disk(Some(Path::new("/nonexistent/isolab-disk")), 1 << 20)
            .err()
            .unwrap();
        assert!(matches!(e, IsolationError::BadInput(_)), "{e:?}");
    }

    fn io_line(kind: &str) -> ResultLine {
        serde_json::from_str(&format!(
            r#"{{"schema":1,"probe":"io","metric":"seq_read_mb_per_s","value":1.0,"unit":"MB/s",
               "samples":[1.0],"platform":"bare","kind":"{kind}","extra":{{"cache_bypassed":false}}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn io_kind_comes_from_the_vmm() {
        let mut lines = vec![io_line("buffered")];
        set_io_kind(&mut lines, Some(DiskMode::Direct));
        assert_eq!(lines[0].kind.as_deref(), Some("direct"));
        assert_eq!(
            lines[0].extra["cache_bypassed"],
            serde_json::Value::Bool(true)
        );
        set_io_kind(&mut lines, Some(DiskMode::Buffered));
        assert_eq!(lines[0].kind.as_deref(), Some("buffered"));
        assert_eq!(
            lines[0].extra["cache_bypassed"],
            serde_json::Value::Bool(false)
        );
        set_io_kind(&mut lines, None);
        assert_eq!(lines[0].kind.as_deref(), Some("buffered"));
    }

    #[test]
    fn notes_say_how_the_disk_was_reached() {
        let mut outcome = microvm::VmOutcome {
            exit: microvm::VmExit::GuestExit { code: 0 },
            serial: vec![],
            output: vec![],
            timings: Default::default(),
            memory: Default::default(),
            stats: Default::default(),
        };
        let disk = Disk::User(PathBuf::from("/d"));
        let note = |o: &microvm::VmOutcome| run_notes(o, Some(&disk)).join("\n");
        outcome.stats.disk_mode = Some(DiskMode::Direct);
        outcome.stats.blk_direct_bytes = 1 << 20;
        let n = note(&outcome);
        assert!(n.contains("O_DIRECT, bypassing the host page cache"), "{n}");
        assert!(!n.contains("except"), "{n}");
        outcome.stats.blk_buffered_bytes = 512;
        let n = note(&outcome);
        assert!(n.contains("except for 512 of 1049088 bytes"), "{n}");
        outcome.stats.disk_mode = Some(DiskMode::Buffered);
        let n = note(&outcome);
        assert!(
            n.contains("refused O_DIRECT") && n.contains("through the host page cache"),
            "{n}"
        );
    }

    #[test]
    fn vm_exits_map_to_run_exits() {
        assert_eq!(
            exit_of(&microvm::VmExit::GuestExit { code: 3 }),
            Exit::Exited { code: 3 }
        );
        assert_eq!(exit_of(&microvm::VmExit::Timeout), Exit::Timeout);
        match exit_of(&microvm::VmExit::Shutdown) {
            Exit::VmStopped { detail } => assert!(detail.contains("triple"), "{detail}"),
            other => panic!("{other:?}"),
        }
    }
}
