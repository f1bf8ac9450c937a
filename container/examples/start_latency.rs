//! Start latency of `/bin/true` in one busybox rootfs: isolab's container,
//! `runc run` (a `runc spec` bundle) and `bwrap --unshare-all`, interleaved
//! in one run so they share the machine's noise.
//!
//! `cargo run --release -p container --example start_latency -- [RUNS]` (as root).
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

use std::path::Path;
use std::process::{Command, Stdio as PStdio};
use std::time::{Duration, Instant};

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn busybox_rootfs(dir: &Path) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir bin");
    std::fs::copy("/bin/busybox", bin.join("busybox")).expect("copy busybox");
    for a in ["sh", "true"] {
        std::os::unix::fs::symlink("busybox", bin.join(a)).expect("symlink");
    }
    for d in ["proc", "dev", "sys", "tmp", "etc"] {
        std::fs::create_dir_all(dir.join(d)).expect("mkdir");
    }
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let bundle = tempfile::tempdir().expect("tempdir");
    let rootfs = bundle.path().join("rootfs");
    busybox_rootfs(&rootfs);

    let have_runc = Command::new("runc")
        .args(["spec", "-b"])
        .arg(bundle.path())
        .status()
        .is_ok_and(|s| s.success());
    if have_runc {
        let cfg = bundle.path().join("config.json");
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&cfg).expect("read config")).expect("json");
        v["process"]["terminal"] = false.into();
        v["process"]["args"] = serde_json::json!(["/bin/true"]);
        std::fs::write(&cfg, serde_json::to_vec_pretty(&v).expect("json")).expect("write config");
    }
    let have_bwrap = Command::new("bwrap")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());

    let spec =
        container::ContainerSpec::with_rootfs(&rootfs, "/bin/true").stdout(container::Stdio::Null);
    let (mut ours, mut runc, mut bwrap) = (Vec::new(), Vec::new(), Vec::new());
    let mut setup = Vec::new();
    for i in 0..runs {
        let t = Instant::now();
        let r = container::run(&spec).expect("isolab container run");
        ours.push(t.elapsed());
        assert!(r.success(), "{r:?}");
        setup.push(r.times.exec.expect("exec time") - r.times.before_clone);

        if have_runc {
            let t = Instant::now();
            let st = Command::new("runc")
                .args(["run", "-b"])
                .arg(bundle.path())
                .arg(format!("isolab-lat-{}-{i}", std::process::id()))
                .stdin(PStdio::null())
                .status()
                .expect("runc");
            runc.push(t.elapsed());
            assert!(st.success());
        }
        if have_bwrap {
            let t = Instant::now();
            let st = Command::new("bwrap")
                .args(["--unshare-all", "--bind"])
                .arg(&rootfs)
                .args(["/", "--proc", "/proc", "--dev", "/dev", "/bin/true"])
                .status()
                .expect("bwrap");
            bwrap.push(t.elapsed());
            assert!(st.success());
        }
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let o = median(&mut ours);
    println!("runs: {runs} each, interleaved; median wall time of the whole run of /bin/true");
    println!(
        "isolab container  {:7.2} ms   (clone -> exec {:5.2} ms)",
        ms(o),
        ms(median(&mut setup))
    );
    if have_runc {
        let r = median(&mut runc);
        println!(
            "runc run          {:7.2} ms   isolab/runc  = {:.3}",
            ms(r),
            ms(o) / ms(r)
        );
    }
    if have_bwrap {
        let b = median(&mut bwrap);
        println!(
            "bwrap --unshare-all {:5.2} ms   isolab/bwrap = {:.3}",
            ms(b),
            ms(o) / ms(b)
        );
    }
    // SAFETY: getrusage fills a zeroed struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid out pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    println!(
        "peak RSS of this process (runtime + benchmark loop): {} KiB",
        ru.ru_maxrss
    );
}
