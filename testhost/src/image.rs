//! The test host's boot files: Debian's `vmlinuz` and an initramfs holding
//! busybox, the modules the root needs and [stage 1](../stage1.sh).
//!
//! Cached under `<cache>/<key>/{vmlinuz,initramfs.cpio,host.txt}`, where the
//! key hashes the kernel package and version, the module list, stage 1 and
//! busybox. An entry is assembled in a temporary directory and renamed into
//! place, so a crash never leaves half an entry; a valid entry is reused.

use std::path::{Path, PathBuf};

use microvm::boot::initramfs::Initramfs;
use sha2::{Digest, Sha256};

use crate::Error;
use crate::modules::ModuleTree;
use crate::package::{self, KernelPackage};

/// Stage 1: the initramfs's `/init`.
pub const STAGE1: &str = include_str!("stage1.sh");
/// Where busybox comes from (Debian's `busybox-static`).
pub const BUSYBOX: &str = "/bin/busybox";
/// Modules loaded by stage 1, with their dependencies: the virtio console
/// and 9p (the root and the shares), overlayfs, KVM for AMD, and what the
/// container and network tests create (loop devices, veth, bridges, tun,
/// the dummy interface stage 2 adds).
pub const MODULES: &[&str] = &[
    "virtio_pci",
    "virtio_console",
    "9pnet_virtio",
    "9p",
    "overlay",
    "kvm_amd",
    "loop",
    "veth",
    "bridge",
    "tun",
    "dummy",
];
/// Busybox applets stage 1 uses.
const APPLETS: &[&str] = &[
    "sh",
    "mount",
    "insmod",
    "mkdir",
    "ln",
    "cut",
    "switch_root",
    "poweroff",
];
/// Bump when the layout of an entry changes.
const RECIPE_VERSION: &str = "1";

/// Boot files of a prepared test host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// The cache entry.
    pub dir: PathBuf,
    /// The kernel (bzImage).
    pub kernel: PathBuf,
    /// The initramfs.
    pub initramfs: PathBuf,
    /// `name version` of the kernel package.
    pub package: String,
}

impl Image {
    fn in_dir(dir: &Path) -> Image {
        Image {
            dir: dir.to_path_buf(),
            kernel: dir.join("vmlinuz"),
            initramfs: dir.join("initramfs.cpio"),
            package: std::fs::read_to_string(dir.join("host.txt"))
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
        }
    }

    fn complete(&self) -> bool {
        self.kernel.is_file() && self.initramfs.is_file() && !self.package.is_empty()
    }
}

/// The cache key of an image from `pkg` with this busybox.
pub fn key(pkg: &KernelPackage, busybox: &[u8]) -> String {
    let mut h = Sha256::new();
    for part in [
        RECIPE_VERSION,
        &pkg.name,
        &pkg.version,
        STAGE1,
        &MODULES.join(","),
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.update(busybox);
    let digest = h.finalize();
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The image in `cache` for `pkg`, built first if it is not there.
/// `deb` names a local package instead of the release's current one.
pub fn prepare(cache: &Path, deb: Option<&Path>) -> Result<Image, Error> {
    let busybox = std::fs::read(BUSYBOX).map_err(|_| Error::ToolMissing {
        tool: "a static busybox at /bin/busybox",
        hint: "apt-get install busybox-static",
    })?;
    let pkg = match deb {
        Some(d) => package::local(d)?,
        None => package::resolve()?,
    };
    let dir = cache.join(key(&pkg, &busybox));
    let image = Image::in_dir(&dir);
    if image.complete() {
        return Ok(image);
    }
    std::fs::create_dir_all(cache).map_err(Error::io(cache))?;
    let work = tempfile::Builder::new()
        .prefix(".build-")
        .tempdir_in(cache)
        .map_err(Error::io(cache))?;
    build(&pkg, busybox, work.path())?;
    let entry = work.path().join("entry");
    match std::fs::rename(&entry, &dir) {
        Ok(()) => {}
        // Another process finished the same entry first: use theirs.
        Err(_) if Image::in_dir(&dir).complete() => {}
        Err(e) => return Err(Error::io(&dir)(e)),
    }
    Ok(Image::in_dir(&dir))
}

/// Unpacks `pkg` in `work` and writes the entry to `work/entry`.
fn build(pkg: &KernelPackage, busybox: Vec<u8>, work: &Path) -> Result<(), Error> {
    let root = package::unpack(pkg, work)?;
    let (kernel, modules) = kernel_files(&root)?;
    let tree = ModuleTree::scan(&modules)?;
    let order = tree.load_order(MODULES)?;

    let mut fs = Initramfs::new();
    fs.file("/init", STAGE1.as_bytes().to_vec(), 0o755)?;
    fs.busybox(busybox, APPLETS)?;
    for d in ["/dev", "/proc", "/sys", "/root", "/mnt/lower", "/mnt/rw"] {
        fs.dir(d, 0o755)?;
    }
    for m in &order {
        // load_order only returns modules it found.
        let file = tree.file(m).expect("module in the tree");
        let data = std::fs::read(file).map_err(Error::io(file))?;
        fs.file(&format!("/modules/{m}.ko"), data, 0o644)?;
    }
    fs.file(
        "/modules/order",
        format!("{}\n", order.join("\n")).into_bytes(),
        0o644,
    )?;

    let entry = work.join("entry");
    std::fs::create_dir(&entry).map_err(Error::io(&entry))?;
    let write = |name: &str, data: &[u8]| {
        let p = entry.join(name);
        std::fs::write(&p, data).map_err(Error::io(&p))
    };
    write("initramfs.cpio", &fs.to_bytes()?)?;
    std::fs::copy(&kernel, entry.join("vmlinuz")).map_err(Error::io(&kernel))?;
    write(
        "host.txt",
        format!("{} {}\n", pkg.name, pkg.version).as_bytes(),
    )
}

/// `boot/vmlinuz-*` and `lib/modules/*/kernel` of an unpacked package.
fn kernel_files(root: &Path) -> Result<(PathBuf, PathBuf), Error> {
    let only = |dir: &Path, prefix: &str| -> Result<PathBuf, Error> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(Error::io(dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(prefix))
            })
            .collect();
        match found.len() {
            1 => Ok(found.remove(0)),
            n => Err(Error::Package(format!(
                "expected one {prefix}* in {}, found {n}",
                dir.display()
            ))),
        }
    };
    let kernel = only(&root.join("boot"), "vmlinuz-")?;
    let modules = only(&root.join("lib/modules"), "")?.join("kernel");
    Ok((kernel, modules))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_changes_with_every_input() {
        let pkg = KernelPackage {
            name: "linux-image-6.1.0-56-amd64".into(),
            version: "6.1.192-2".into(),
            deb: None,
        };
        let base = key(&pkg, b"bb");
        assert_eq!(base, key(&pkg, b"bb"));
        assert_ne!(base, key(&pkg, b"bb2"));
        let newer = KernelPackage {
            version: "6.1.193-1".into(),
            ..pkg.clone()
        };
        assert_ne!(base, key(&newer, b"bb"));
    }

    #[test]
    fn stage1_loads_the_modules_and_hands_over_to_init() {
        assert!(STAGE1.starts_with("#!/bin/sh\n"));
        assert!(STAGE1.contains("/modules/order"));
        assert!(STAGE1.contains("cgroup2"));
        assert!(STAGE1.contains("exec switch_root"));
        for applet in ["mount", "insmod", "mkdir", "switch_root", "poweroff"] {
            assert!(APPLETS.contains(&applet));
        }
    }
}
