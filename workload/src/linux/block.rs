//! The `io` probe's target on Linux: a file (temporary or named) or a block
//! device, opened with `O_DIRECT` when the filesystem allows it.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::kernels::io::AlignedPage;
use crate::platform::{BLOCK_ALIGN, BlockDevice, BlockError};

/// A file or block device the `io` probe reads and writes.
#[derive(Debug)]
pub struct FileBlock {
    file: File,
    direct: bool,
}

static SERIAL: AtomicU32 = AtomicU32::new(0);

fn open_err(target: &Path, e: impl std::fmt::Display) -> BlockError {
    BlockError::Open {
        target: target.display().to_string(),
        detail: e.to_string(),
    }
}

impl FileBlock {
    /// Opens `target` for `size` bytes of I/O:
    /// - a directory (or `None`: the temp dir): a new file inside it;
    /// - a path that does not exist: that new file;
    /// - an existing regular file: reused, and **its contents overwritten**;
    /// - a block device: used raw, and **its contents overwritten**.
    ///
    /// New files are unlinked as soon as they are open, so nothing is left
    /// behind however the process ends.
    pub fn open(target: Option<&str>, size: u64) -> Result<FileBlock, BlockError> {
        let given = target.map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
        let meta = std::fs::metadata(&given);
        let (path, create) = match &meta {
            Ok(m) if m.is_dir() => {
                let n = SERIAL.fetch_add(1, Ordering::Relaxed);
                (
                    given.join(format!(".isolab-io-{}-{n}", std::process::id())),
                    true,
                )
            }
            Ok(m) if m.is_file() || m.file_type().is_block_device() => (given.clone(), false),
            Ok(_) => {
                return Err(open_err(
                    &given,
                    "not a directory, regular file or block device",
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => (given.clone(), true),
            Err(e) => return Err(open_err(&given, e)),
        };
        let (file, direct) = open_file(&path, create).map_err(|e| open_err(&path, e))?;
        if create {
            // The open descriptor keeps the data; the name is no longer needed.
            std::fs::remove_file(&path).map_err(|e| open_err(&path, e))?;
        }
        let mut dev = FileBlock { file, direct };
        dev.prepare(&path, size, create)?;
        Ok(dev)
    }

    /// Makes sure `size` bytes are usable, and that `O_DIRECT` really works
    /// (some filesystems accept the flag at open and refuse the I/O).
    fn prepare(&mut self, path: &Path, size: u64, created: bool) -> Result<(), BlockError> {
        let is_blockdev = self
            .file
            .metadata()
            .map_err(|e| open_err(path, e))?
            .file_type()
            .is_block_device();
        if is_blockdev {
            let available = device_size(&self.file).map_err(|e| open_err(path, e))?;
            if available < size {
                return Err(BlockError::TooSmall {
                    target: path.display().to_string(),
                    available,
                    needed: size,
                });
            }
        } else if created || self.file.metadata().map_err(|e| open_err(path, e))?.len() < size {
            // Reserve the space now so a full disk is a clear error up front.
            // SAFETY: fallocate on a descriptor we own.
            let rc = unsafe { libc::fallocate(self.file.as_raw_fd(), 0, 0, size as libc::off_t) };
            if rc != 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EOPNOTSUPP) {
                    return Err(open_err(
                        path,
                        format_args!("cannot reserve {size} bytes: {e}"),
                    ));
                }
                self.file.set_len(size).map_err(|e| open_err(path, e))?;
            }
        }
        if self.direct && !direct_io_works(&self.file) {
            set_direct(&self.file, false).map_err(|e| open_err(path, e))?;
            self.direct = false;
        }
        Ok(())
    }
}

fn open_file(path: &Path, create: bool) -> io::Result<(File, bool)> {
    let open = |direct: bool| {
        let mut o = OpenOptions::new();
        o.read(true).write(true);
        if create {
            o.create_new(true);
        }
        o.mode(0o600)
            .custom_flags(if direct { libc::O_DIRECT } else { 0 })
            .open(path)
    };
    match open(true) {
        Ok(f) => Ok((f, true)),
        // EINVAL: the filesystem has no O_DIRECT (e.g. ramfs, or tmpfs on
        // older kernels). The kernel refuses the flag only after creating
        // the file, so a new file must go before it is created again.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            if create {
                match std::fs::remove_file(path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            Ok((open(false)?, false))
        }
        Err(e) => Err(e),
    }
}

fn direct_io_works(file: &File) -> bool {
    let mut page = AlignedPage::new();
    let buf = page.bytes_mut();
    // Read and write back the first page: harmless, aligned, and it is what
    // the probe is about to do anyway.
    file.read_exact_at(buf, 0).is_ok() && file.write_all_at(buf, 0).is_ok()
}

fn set_direct(file: &File, on: bool) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: F_GETFL/F_SETFL on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 {
            return Err(io::Error::last_os_error());
        }
        let flags = if on {
            flags | libc::O_DIRECT
        } else {
            flags & !libc::O_DIRECT
        };
        if libc::fcntl(fd, libc::F_SETFL, flags) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn device_size(file: &File) -> io::Result<u64> {
    let mut bytes: u64 = 0;
    // BLKGETSIZE64 = _IOR(0x12, 114, size_t)
    const BLKGETSIZE64: libc::c_ulong = 0x8008_1272;
    // SAFETY: BLKGETSIZE64 writes one u64 to the pointer we pass.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), BLKGETSIZE64, &mut bytes) };
    if rc == 0 {
        Ok(bytes)
    } else {
        Err(io::Error::last_os_error())
    }
}

fn op_err(op: &'static str, offset: u64, len: usize, e: io::Error) -> BlockError {
    BlockError::Op {
        op,
        offset,
        len: len as u64,
        detail: e.to_string(),
    }
}

impl BlockDevice for FileBlock {
    fn bypasses_cache(&self) -> bool {
        self.direct
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        debug_assert!(offset.is_multiple_of(BLOCK_ALIGN as u64));
        self.file
            .read_exact_at(buf, offset)
            .map_err(|e| op_err("read", offset, buf.len(), e))
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), BlockError> {
        self.file
            .write_all_at(buf, offset)
            .map_err(|e| op_err("write", offset, buf.len(), e))
    }

    fn flush(&mut self) -> Result<(), BlockError> {
        self.file.sync_all().map_err(|e| op_err("flush", 0, 0, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_file_in_a_directory_is_gone_and_usable() {
        let dir = std::env::temp_dir().join(format!("isolab-block-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        {
            let mut dev = FileBlock::open(dir.to_str(), 1 << 20).unwrap();
            let mut page = AlignedPage::new();
            page.bytes_mut()[..4].copy_from_slice(b"isol");
            dev.write_at(8192, page.bytes_mut()).unwrap();
            dev.flush().unwrap();
            let mut back = AlignedPage::new();
            dev.read_at(8192, back.bytes_mut()).unwrap();
            assert_eq!(&back.bytes_mut()[..4], b"isol");
            // Unlinked at open: the directory is already empty.
            assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        }
        std::fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn a_filesystem_without_o_direct_gets_a_buffered_file() {
        // ramfs (a Linux guest's initramfs root) creates the file, then
        // refuses O_DIRECT: the retry must not trip over that file.
        if !hostcaps::testing::require_root("a_filesystem_without_o_direct_gets_a_buffered_file") {
            return;
        }
        let dir = std::env::temp_dir().join(format!("isolab-ramfs-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = std::ffi::CString::new(dir.to_str().unwrap()).unwrap();
        // SAFETY: NUL-terminated strings that outlive the call.
        let rc = unsafe {
            libc::mount(
                c"ramfs".as_ptr(),
                path.as_ptr(),
                c"ramfs".as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "mount ramfs: {}", io::Error::last_os_error());
        let opened = FileBlock::open(dir.to_str(), 1 << 20).map(|d| d.direct);
        let left = std::fs::read_dir(&dir).unwrap().count();
        // SAFETY: as above.
        unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
        std::fs::remove_dir(&dir).unwrap();
        assert!(!opened.unwrap());
        assert_eq!(left, 0, "the file is unlinked once open");
    }

    #[test]
    fn missing_parent_names_the_path() {
        let e = FileBlock::open(Some("/nonexistent-isolab-dir/x"), 1 << 20).unwrap_err();
        assert!(e.to_string().contains("/nonexistent-isolab-dir/x"), "{e}");
    }

    #[test]
    fn character_device_is_refused() {
        let e = FileBlock::open(Some("/dev/null"), 1 << 20).unwrap_err();
        assert!(e.to_string().contains("not a directory"), "{e}");
    }
}
