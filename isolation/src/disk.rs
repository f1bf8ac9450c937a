//! The `io` probe's target, one path for every backend: the configuration's
//! `io_target` is a place on this host and `io_size` the bytes the probe
//! needs. Native passes both as they are; the container binds the target in
//! and names it by its path inside ([`seen_as`]); both VM backends meet the
//! request with a virtio-blk disk of `io_size` bytes ([`io_request`],
//! [`prepare_disk`]) where the target says, and the guest sees only that disk.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use workload::args::{Config, Probe};

use super::IsolationError;

/// The virtio-blk disk of one run: an unnamed temporary file (gone with its
/// last descriptor, however the process ends) or the user's own file.
#[derive(Debug)]
pub enum Disk {
    /// Kept open for the run; the VMM opens it again through `/proc/self/fd`.
    Temp(File),
    /// The user's file or block device, used as it is.
    User(PathBuf),
}

impl Disk {
    /// What the disk is, for a note.
    pub fn describe(&self) -> String {
        match self {
            Disk::Temp(_) => "an unnamed temporary file".to_string(),
            Disk::User(p) => p.display().to_string(),
        }
    }

    /// The path the VMM opens.
    pub fn path(&self) -> PathBuf {
        match self {
            Disk::Temp(file) => PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd())),
            Disk::User(p) => p.clone(),
        }
    }
}

/// What the `io` probe needs from the host, when the configuration runs it:
/// its size in bytes and the host-side target.
pub fn io_request(cfg: &Config) -> Option<(u64, Option<PathBuf>)> {
    cfg.probes
        .contains(&Probe::Io)
        .then(|| (cfg.io_size, cfg.io_target.as_ref().map(PathBuf::from)))
}

/// The configuration as the child or guest sees it: the same, but with the
/// io target named by its path there (`None`: the platform's default, which
/// on the tiny guest is its disk).
pub fn seen_as(cfg: &Config, target: Option<String>) -> Config {
    Config {
        io_target: target,
        ..cfg.clone()
    }
}

/// Prepares the disk for an `io` run of `size` bytes: a sparse temporary
/// file in the temp dir or in `target` when it is a directory, or `target`
/// itself when it is a regular file or a block device (overwritten, as
/// natively).
pub fn prepare_disk(target: Option<&Path>, size: u64) -> Result<Disk, IsolationError> {
    let io = |context: String| move |source| IsolationError::Io { context, source };
    let dir = match target {
        None => std::env::temp_dir(),
        Some(t) => {
            let meta = std::fs::metadata(t)
                .map_err(|e| IsolationError::BadInput(format!("io target {}: {e}", t.display())))?;
            if meta.is_file() {
                if meta.len() < size {
                    let f = File::options()
                        .write(true)
                        .open(t)
                        .map_err(io(format!("opening {}", t.display())))?;
                    f.set_len(size)
                        .map_err(io(format!("growing {} to {size} bytes", t.display())))?;
                }
                return Ok(Disk::User(t.to_path_buf()));
            }
            if meta.file_type().is_block_device() {
                return block_device(t, size);
            }
            if !meta.is_dir() {
                return Err(IsolationError::BadInput(format!(
                    "io target {} must be a directory, a regular file or a block device for a VM",
                    t.display()
                )));
            }
            t.to_path_buf()
        }
    };
    let file = tempfile::tempfile_in(&dir)
        .map_err(io(format!("creating a disk file in {}", dir.display())))?;
    file.set_len(size).map_err(io(format!(
        "sizing the disk file in {} to {size} bytes",
        dir.display()
    )))?;
    Ok(Disk::Temp(file))
}

/// A block device as the disk, if it holds `size` bytes.
fn block_device(path: &Path, size: u64) -> Result<Disk, IsolationError> {
    use std::io::{Seek, SeekFrom};
    let available = File::open(path)
        .and_then(|mut f| f.seek(SeekFrom::End(0)))
        .map_err(|source| IsolationError::Io {
            context: format!("measuring block device {}", path.display()),
            source,
        })?;
    if available < size {
        return Err(IsolationError::BadInput(format!(
            "io target {} holds {available} bytes, the io probe needs {size}",
            path.display()
        )));
    }
    Ok(Disk::User(path.to_path_buf()))
}
