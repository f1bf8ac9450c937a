//! `isolab kernel build|path`.

use isolation::progress::Progress;

use crate::args::KernelAction;
use crate::progress::Bar;

/// Packages the kernel build needs (Debian names).
const BUILD_PACKAGES: [&str; 7] = [
    "linux-source-6.1",
    "flex",
    "bison",
    "bc",
    "libelf-dev",
    "make",
    "gcc",
];

/// Builds (or finds in the cache) the project's guest kernel, or prints its path.
pub fn run(action: KernelAction) -> anyhow::Result<i32> {
    match action {
        KernelAction::Path => match isolation::kernel::cached_path()? {
            Some(a) => {
                println!("{}", a.vmlinux.display());
                Ok(0)
            }
            None => {
                eprintln!("isolab: the guest kernel is not built yet: run `isolab kernel build`");
                Ok(1)
            }
        },
        KernelAction::Build { install } => {
            if install {
                install_packages()?;
            }
            if let Some(a) = isolation::kernel::cached_path()? {
                println!("cached: {} (no rebuild needed)", a.vmlinux.display());
                return Ok(0);
            }
            eprintln!(
                "building the guest kernel from Debian's linux-source-6.1 (about 6 minutes on 2 cores)…"
            );
            let bar = Bar::stderr();
            let built = isolation::kernel::build(&bar);
            bar.finish();
            let a = built?;
            let took = isolation::kernel::build_time(&a)
                .map(|d| format!(" in {:.0} s", d.as_secs_f64()))
                .unwrap_or_default();
            println!("built{took}: {}", a.vmlinux.display());
            println!("       {}", a.bzimage.display());
            Ok(0)
        }
    }
}

fn install_packages() -> anyhow::Result<()> {
    if !hostcaps::is_root() {
        anyhow::bail!("--install runs apt-get and needs root");
    }
    let ok = std::process::Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(BUILD_PACKAGES)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()?
        .success();
    anyhow::ensure!(ok, "apt-get install {} failed", BUILD_PACKAGES.join(" "));
    Ok(())
}
