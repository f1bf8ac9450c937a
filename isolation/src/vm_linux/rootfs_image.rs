//! A bundle's root filesystem as an ext4 image for the guest's virtio-blk
//! disk, made by `mkfs.ext4 -d` (e2fsprogs): no root, no loop device, no
//! mount on the host. `mkfs` copies the tree with `lstat`, so a symlink in
//! the image is copied as a symlink and never followed on the host.
//!
//! The image is a sparse file in the temp dir named
//! `isolab-rootfs-<pid>-…` (what `isolab clean` removes after a killed
//! run); once built it is opened and its name removed at once, so the run
//! holds it by descriptor only and it is gone however the run ends.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::IsolationError;
use crate::disk::Disk;

/// Most entries (files, directories, links…) an image may hold.
pub const MAX_ENTRIES: u64 = 1_000_000;
/// Most bytes of file data an image may hold.
pub const MAX_DATA_BYTES: u64 = 16 << 30;
/// Free space left in the image for what the program writes.
pub const HEADROOM_BYTES: u64 = 64 << 20;
/// Spare inodes for files the program creates.
const SPARE_INODES: u64 = 4096;
const BLOCK: u64 = 4096;
/// e2fsprogs' ext4 formatter.
pub const MKFS: &str = "mkfs.ext4";

/// What a root filesystem holds, counted without following symlinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TreeSize {
    /// Entries, the root included.
    pub entries: u64,
    /// Bytes of data, each file rounded up to whole blocks.
    pub data_bytes: u64,
}

impl TreeSize {
    /// Image size: the data, inode tables and headroom, in whole MiB.
    pub fn image_bytes(&self) -> u64 {
        let raw = self.data_bytes + self.inodes() * 256 + HEADROOM_BYTES;
        (raw + raw / 10).div_ceil(1 << 20) << 20
    }

    /// Inodes to format.
    pub fn inodes(&self) -> u64 {
        self.entries + SPARE_INODES
    }
}

fn bad(msg: String) -> IsolationError {
    IsolationError::BadInput(msg)
}

/// Counts `root` (which must be a directory) without following symlinks,
/// refusing a tree beyond [`MAX_ENTRIES`] or [`MAX_DATA_BYTES`].
pub fn measure(root: &Path) -> Result<TreeSize, IsolationError> {
    let io = |p: &Path| {
        let context = format!("reading the root filesystem at {}", p.display());
        move |source| IsolationError::Io { context, source }
    };
    let meta = std::fs::metadata(root).map_err(io(root))?;
    if !meta.is_dir() {
        return Err(bad(format!(
            "the bundle's root filesystem {} is not a directory",
            root.display()
        )));
    }
    let mut size = TreeSize {
        entries: 1,
        data_bytes: BLOCK,
    };
    // An explicit stack: a hostile tree may be deeper than our own stack.
    let mut dirs: Vec<PathBuf> = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let entry = entry.map_err(io(&dir))?;
            let m = entry.metadata().map_err(io(&entry.path()))?;
            size.entries += 1;
            size.data_bytes += m.len().div_ceil(BLOCK) * BLOCK;
            if m.is_dir() {
                dirs.push(entry.path());
            }
            if size.entries > MAX_ENTRIES || size.data_bytes > MAX_DATA_BYTES {
                return Err(bad(format!(
                    "the bundle's root filesystem {} is larger than a VM image may be \
                     ({MAX_ENTRIES} entries, {} GiB)",
                    root.display(),
                    MAX_DATA_BYTES >> 30
                )));
            }
        }
    }
    Ok(size)
}

/// Builds the image of `root` and returns it as an unnamed temporary disk.
pub fn build(root: &Path) -> Result<Disk, IsolationError> {
    let size = measure(root)?;
    let temp = std::env::temp_dir();
    crate::kernel::sweep_stale_temps(&temp, "isolab-rootfs-");
    let io = |context: &str| {
        let context = context.to_string();
        move |source| IsolationError::Io { context, source }
    };
    let named = tempfile::Builder::new()
        .prefix(&crate::kernel::temp_prefix("isolab-rootfs-"))
        .suffix(".ext4")
        .tempfile_in(&temp)
        .map_err(io("creating the image file"))?;
    named
        .as_file()
        .set_len(size.image_bytes())
        .map_err(io("sizing the image file"))?;
    format(root, named.path(), &size)?;
    // Reopen by name (mkfs wrote through its own descriptor), then drop the
    // name: from here the image lives only as long as the descriptor.
    let file = File::options()
        .read(true)
        .write(true)
        .open(named.path())
        .map_err(io("opening the image"))?;
    named.close().map_err(io("removing the image's name"))?;
    Ok(Disk::Temp(file))
}

/// Runs `mkfs.ext4 -d root image`.
fn format(root: &Path, image: &Path, size: &TreeSize) -> Result<(), IsolationError> {
    let out = Command::new(MKFS)
        .args([
            "-q",
            "-F",
            "-b",
            "4096",
            "-I",
            "256",
            "-m",
            "0",
            "-L",
            "isolab-root",
        ])
        // No journal (a throwaway disk), no resize reserve: less to write.
        .args([
            "-O",
            "^has_journal,^resize_inode",
            "-E",
            "lazy_itable_init=1",
        ])
        .arg("-N")
        .arg(size.inodes().to_string())
        .arg("-d")
        .arg(root)
        .arg(image)
        .output()
        .map_err(|e| {
            bad(format!(
                "the VM route needs {MKFS} (e2fsprogs) to turn the rootfs into a disk image: {e}; \
                 run `apt-get install e2fsprogs`"
            ))
        })?;
    if !out.status.success() {
        return Err(bad(format!(
            "{MKFS} -d {} failed ({}): {}",
            root.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// The road not taken, kept so the benchmark can price it: the rootfs as
/// an initramfs archive (guest RAM holds every file; no disk). Regular
/// files, directories and symlinks only, read without following links.
pub fn initramfs_of(root: &Path) -> Result<Vec<u8>, IsolationError> {
    use std::os::unix::fs::PermissionsExt;
    measure(root)?;
    let io = |p: &Path| {
        let context = format!("reading {}", p.display());
        move |source| IsolationError::Io { context, source }
    };
    let cpio = |e: microvm::boot::initramfs::InitramfsError| bad(e.to_string());
    let mut fs = microvm::boot::initramfs::Initramfs::new();
    let mut dirs: Vec<PathBuf> = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let path = entry.map_err(io(&dir))?.path();
            let m = std::fs::symlink_metadata(&path).map_err(io(&path))?;
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let name = format!("/{}", rel.display());
            let mode = m.permissions().mode() & 0o7777;
            if m.is_dir() {
                fs.dir(&name, mode).map_err(cpio)?;
                dirs.push(path);
            } else if m.file_type().is_symlink() {
                let target = std::fs::read_link(&path).map_err(io(&path))?;
                fs.symlink(&name, &target.to_string_lossy()).map_err(cpio)?;
            } else if m.is_file() {
                let data = std::fs::read(&path).map_err(io(&path))?;
                fs.file(&name, data, mode).map_err(cpio)?;
            }
        }
    }
    fs.to_bytes().map_err(cpio)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn measure_counts_without_following_links_and_sizes_the_image() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("bin")).unwrap();
        std::fs::write(d.path().join("bin/prog"), vec![1u8; 5000]).unwrap();
        // A link to the host's root must count as one entry, not a tree.
        symlink("/", d.path().join("escape")).unwrap();
        let s = measure(d.path()).unwrap();
        assert_eq!(s.entries, 4);
        // The file's two blocks and the root's; directory and link sizes
        // depend on the host's file system, but everything is whole blocks.
        assert!(s.data_bytes >= 4096 + 8192, "{s:?}");
        assert!(
            s.data_bytes <= 5 * 4096 + 8192 && s.data_bytes.is_multiple_of(4096),
            "{s:?}"
        );
        assert!(s.image_bytes() >= HEADROOM_BYTES);
        assert_eq!(s.image_bytes() % (1 << 20), 0);
        assert!(matches!(
            measure(&d.path().join("bin/prog")),
            Err(IsolationError::BadInput(_))
        ));
    }

    #[test]
    fn build_leaves_only_an_unnamed_image() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("hello"), b"hi\n").unwrap();
        let before = leftovers();
        let disk = match build(d.path()) {
            Ok(disk) => disk,
            Err(IsolationError::BadInput(e)) if e.contains("needs mkfs.ext4") => {
                println!("SKIP: {e}");
                return;
            }
            Err(e) => panic!("{e}"),
        };
        let Disk::Temp(file) = &disk else {
            panic!("expected a temporary disk")
        };
        let mut magic = [0u8; 2];
        std::os::unix::fs::FileExt::read_exact_at(file, &mut magic, 1024 + 0x38).unwrap();
        assert_eq!(magic, [0x53, 0xef], "ext4 superblock magic");
        assert_eq!(leftovers(), before, "the image's name must be gone");
    }

    #[test]
    fn the_initramfs_alternative_holds_the_tree() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("bin")).unwrap();
        std::fs::write(d.path().join("bin/prog"), b"PROGRAM").unwrap();
        symlink("prog", d.path().join("bin/alias")).unwrap();
        let text = String::from_utf8_lossy(&initramfs_of(d.path()).unwrap()).into_owned();
        for needle in ["bin/prog\0", "PROGRAM", "bin/alias\0", "TRAILER!!!"] {
            assert!(text.contains(needle), "{needle} missing");
        }
    }

    fn leftovers() -> Vec<std::ffi::OsString> {
        let prefix = crate::kernel::temp_prefix("isolab-rootfs-");
        let mut v: Vec<_> = std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .filter(|n| n.to_string_lossy().starts_with(&prefix))
            .collect();
        v.sort();
        v
    }
}
