//! Initramfs archives for the Linux guest, cached by content under
//! `$XDG_CACHE_HOME/isolab/initramfs/<sha256>.cpio`.
//!
//! The key covers everything that goes into the archive (the init binary,
//! busybox and its applet list, the disk node, the layout version), so a
//! changed workload binary never reuses a stale archive. Entries are written
//! to a temporary name and renamed, so a crash never leaves a half archive.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use microvm::boot::initramfs::{Initramfs, InitramfsError};
use sha2::{Digest, Sha256};

/// Bump when the layout built below changes.
const LAYOUT_VERSION: &str = "1";
/// Prefix of archives being written.
const TEMP_PREFIX: &str = ".initramfs-";
/// `/dev/vda`: virtio-blk is the only block driver with a dynamic major in
/// the project kernel, and dynamic majors are handed out from 254 down.
const VDA_DEV: (u32, u32) = (254, 0);

/// What goes into a guest's initramfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitramfsSpec {
    /// The binary run as `/init` (the static workload).
    pub init: Vec<u8>,
    /// A static busybox and the applets to link to it under `/bin`.
    pub busybox: Option<(Vec<u8>, Vec<String>)>,
    /// Add a `/dev/vda` node for the virtio-blk disk.
    pub disk_node: bool,
}

/// Errors producing an initramfs.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The archive could not be assembled.
    #[error(transparent)]
    Build(#[from] InitramfsError),
    /// File-system error in the cache.
    #[error("initramfs cache {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl InitramfsSpec {
    /// The content key.
    pub fn key(&self) -> String {
        let mut h = Sha256::new();
        h.update(LAYOUT_VERSION.as_bytes());
        h.update([0]);
        h.update((self.init.len() as u64).to_le_bytes());
        h.update(&self.init);
        if let Some((bb, applets)) = &self.busybox {
            h.update(b"busybox");
            h.update((bb.len() as u64).to_le_bytes());
            h.update(bb);
            for a in applets {
                h.update(a.as_bytes());
                h.update([0]);
            }
        }
        h.update([u8::from(self.disk_node)]);
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Assembles the archive.
    pub fn build(&self) -> Result<Vec<u8>, InitramfsError> {
        let mut fs = Initramfs::with_init(self.init.clone())?;
        if let Some((bb, applets)) = &self.busybox {
            let names: Vec<&str> = applets.iter().map(String::as_str).collect();
            fs.busybox(bb.clone(), &names)?;
        }
        if self.disk_node {
            fs.block_device("/dev/vda", 0o660, VDA_DEV)?;
        }
        fs.to_bytes()
    }
}

/// The archive for `spec`, from `cache_dir` (`…/isolab/initramfs`) when it is
/// there, else built and stored.
pub fn get(cache_dir: &Path, spec: &InitramfsSpec) -> Result<Vec<u8>, CacheError> {
    let path = cache_dir.join(format!("{}.cpio", spec.key()));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CacheError::Io { path, source }
    };
    match fs::read(&path) {
        Ok(bytes) => {
            tracing::debug!(path = %path.display(), "initramfs cached");
            return Ok(bytes);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(&path)(e)),
    }
    let bytes = spec.build()?;
    fs::create_dir_all(cache_dir).map_err(io(cache_dir))?;
    crate::kernel::sweep_stale_temps(cache_dir, TEMP_PREFIX);
    let mut tmp = tempfile::Builder::new()
        .prefix(&crate::kernel::temp_prefix(TEMP_PREFIX))
        .tempfile_in(cache_dir)
        .map_err(io(cache_dir))?;
    tmp.write_all(&bytes).map_err(io(tmp.path()))?;
    // A concurrent writer of the same key wrote the same bytes: either wins.
    tmp.persist(&path).map_err(|e| io(&path)(e.error))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(init: &[u8]) -> InitramfsSpec {
        InitramfsSpec {
            init: init.to_vec(),
            busybox: None,
            disk_node: false,
        }
    }

    #[test]
    fn key_covers_every_input() {
        let a = spec(b"init-a");
        assert_eq!(a.key(), spec(b"init-a").key());
        assert_ne!(a.key(), spec(b"init-b").key());
        let with_disk = InitramfsSpec {
            disk_node: true,
            ..a.clone()
        };
        assert_ne!(a.key(), with_disk.key());
        let with_bb = InitramfsSpec {
            busybox: Some((b"bb".to_vec(), vec!["sh".into()])),
            ..a.clone()
        };
        let more_applets = InitramfsSpec {
            busybox: Some((b"bb".to_vec(), vec!["sh".into(), "ls".into()])),
            ..a.clone()
        };
        assert_ne!(with_bb.key(), a.key());
        assert_ne!(with_bb.key(), more_applets.key());
    }

    #[test]
    fn first_get_builds_and_stores_then_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("initramfs");
        let s = InitramfsSpec {
            disk_node: true,
            ..spec(b"\x7fELF init")
        };
        let built = get(&cache, &s).unwrap();
        assert_eq!(built, s.build().unwrap());
        let entries: Vec<_> = fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            entries,
            vec![std::ffi::OsString::from(format!("{}.cpio", s.key()))]
        );
        // The stored entry is what later calls return, even if building would differ.
        fs::write(cache.join(format!("{}.cpio", s.key())), b"stored").unwrap();
        assert_eq!(get(&cache, &s).unwrap(), b"stored");
    }

    #[test]
    fn archive_has_init_and_the_disk_node() {
        let s = InitramfsSpec {
            disk_node: true,
            ..spec(b"INIT")
        };
        let bytes = s.build().unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("dev/vda\0"));
        assert!(text.contains("init\0"));
        assert!(text.contains("TRAILER!!!\0"));
    }
}
