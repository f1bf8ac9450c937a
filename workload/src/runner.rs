//! Runs a parsed [`Config`]: `ready` first, then each probe in order.

use crate::args::{Config, Probe};
use crate::error::WorkloadError;
use crate::kernels::{cpu, idle, io, mem, net, ready, syscall};
use crate::platform::Platform;

/// Runs every probe of `cfg` on `p`, stopping at the first error.
pub fn run<P: Platform>(p: &mut P, cfg: &Config) -> Result<(), WorkloadError> {
    ready::run(p);
    for probe in &cfg.probes {
        match probe {
            Probe::Ready => {}
            Probe::Cpu => cpu::run(
                p,
                cpu::CpuParams {
                    size: cfg.cpu_size,
                    rounds: cfg.cpu_rounds,
                },
                cfg.reps,
            )?,
            Probe::Mem => mem::run(
                p,
                mem::MemParams {
                    touch_size: cfg.mem_size,
                    stream_size: cfg.stream_size,
                },
                cfg.reps,
            )?,
            Probe::Syscall => syscall::run(p, cfg.syscall_iters, cfg.reps)?,
            Probe::Io => io::run(
                p,
                io::IoParams {
                    size: cfg.io_size,
                    target: cfg.io_target.as_deref(),
                    rand_ops: cfg.io_rand_ops,
                    fsync_ops: cfg.fsync_ops,
                },
                cfg.reps,
            )?,
            Probe::Idle => idle::run(p, cfg.idle_ms),
            Probe::Net => net::run(
                p,
                net::NetParams {
                    targets: &cfg.net_targets,
                    round_trips: cfg.net_round_trips,
                    stream_size: cfg.net_stream_size,
                },
                cfg.reps,
            )?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Command, parse};
    use crate::kernels::fake::FakePlatform;

    fn config(args: &[&str]) -> Config {
        match parse(args.iter().copied()).unwrap() {
            Command::Run(c) => c,
            Command::Help => unreachable!(),
        }
    }

    #[test]
    fn all_runs_every_probe_after_ready() {
        let cfg = config(&[
            "all",
            "--reps",
            "2",
            "--cpu-size",
            "4K",
            "--mem-size",
            "64K",
            "--stream-size",
            "64K",
            "--io-size",
            "1M",
            "--io-rand-ops",
            "4",
            "--fsync-ops",
            "2",
            "--syscall-iters",
            "10",
            "--idle-ms",
            "0",
        ]);
        let mut p = FakePlatform::new(1000);
        run(&mut p, &cfg).unwrap();
        let r = p.results();
        let mut probes: alloc::vec::Vec<&str> = r.iter().map(|l| l.probe.as_str()).collect();
        probes.dedup();
        assert_eq!(probes, ["ready", "cpu", "mem", "syscall", "io", "idle"]);
        assert!(
            r.iter()
                .filter(|l| l.probe != "ready" && l.probe != "idle")
                .all(|l| l.samples.len() >= 2)
        );
        let expected = cpu::checksum(cpu::CpuParams {
            size: 4096,
            rounds: 16,
        })
        .unwrap();
        assert_eq!(r[1].checksum.as_deref(), Some(expected.as_str()));
    }

    #[test]
    fn failing_probe_stops_the_run_with_its_error() {
        let cfg = config(&[
            "io",
            "idle",
            "--io-size",
            "1M",
            "--io-target",
            "/unwritable",
        ]);
        let mut p = FakePlatform::new(1);
        let e = run(&mut p, &cfg).unwrap_err();
        assert!(matches!(e, WorkloadError::Block(_)), "{e}");
        assert_eq!(p.results().len(), 1, "only the ready line");
    }
}
