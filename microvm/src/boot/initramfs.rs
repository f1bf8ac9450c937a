//! cpio "newc" initramfs archives built in memory.
//!
//! The kernel unpacks such an archive into its root file system and runs
//! `/init`. The output is deterministic (sequential inode numbers, mtime 0,
//! uid/gid 0) so callers can cache archives by content hash.

use std::collections::BTreeMap;
use std::io::Write;

use cpio::newc::{Builder, ModeFileType};

/// Major/minor of `/dev/console`.
const CONSOLE_DEV: (u32, u32) = (5, 1);
/// Major/minor of `/dev/null`.
const NULL_DEV: (u32, u32) = (1, 3);

/// One node of the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A directory.
    Dir {
        /// Permission bits.
        mode: u32,
    },
    /// A regular file.
    File {
        /// Contents.
        data: Vec<u8>,
        /// Permission bits.
        mode: u32,
    },
    /// A symbolic link.
    Symlink {
        /// Where it points.
        target: String,
    },
    /// A block device node.
    BlockDevice {
        /// Permission bits.
        mode: u32,
        /// Device major number.
        major: u32,
        /// Device minor number.
        minor: u32,
    },
    /// A character device node.
    CharDevice {
        /// Permission bits.
        mode: u32,
        /// Device major number.
        major: u32,
        /// Device minor number.
        minor: u32,
    },
}

/// Errors building an initramfs.
#[derive(Debug, thiserror::Error)]
pub enum InitramfsError {
    /// A path that is empty, has `.`/`..` components or NUL bytes.
    #[error("invalid initramfs path {path:?}: {reason}")]
    BadPath {
        /// The path.
        path: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A path added twice.
    #[error("initramfs path {path:?} added twice")]
    Duplicate {
        /// The path.
        path: String,
    },
    /// A path whose parent is not a directory.
    #[error("initramfs path {path:?}: parent {parent:?} is not a directory")]
    ParentNotDir {
        /// The path.
        path: String,
        /// Its parent.
        parent: String,
    },
    /// A file bigger than the 4 GiB cpio newc limit.
    #[error("initramfs file {path:?} is {size} bytes; cpio newc stores at most 4 GiB - 1")]
    FileTooLarge {
        /// The path.
        path: String,
        /// Its size.
        size: u64,
    },
    /// Writing the archive failed (only on allocation-level failures).
    #[error("writing the initramfs archive: {0}")]
    Write(#[from] std::io::Error),
}

/// An initramfs being assembled. Paths are absolute (`/init`); parent
/// directories are created on demand with mode 0755.
#[derive(Debug, Clone, Default)]
pub struct Initramfs {
    nodes: BTreeMap<String, Node>,
}

impl Initramfs {
    /// An empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    /// The layout of a guest whose PID 1 is `init` (a static binary): `/init`,
    /// `/dev` with `console` and `null`, and empty `/proc`, `/sys`, `/tmp`
    /// mount points.
    pub fn with_init(init: Vec<u8>) -> Result<Self, InitramfsError> {
        let mut fs = Self::new();
        fs.file("/init", init, 0o755)?;
        for dir in ["/dev", "/proc", "/sys", "/tmp", "/mnt"] {
            fs.dir(dir, 0o755)?;
        }
        fs.char_device("/dev/console", 0o600, CONSOLE_DEV)?;
        fs.char_device("/dev/null", 0o666, NULL_DEV)?;
        Ok(fs)
    }

    /// Adds `/bin/busybox` and one `/bin/<applet>` symlink per applet.
    pub fn busybox(&mut self, busybox: Vec<u8>, applets: &[&str]) -> Result<(), InitramfsError> {
        self.file("/bin/busybox", busybox, 0o755)?;
        for applet in applets.iter().filter(|a| **a != "busybox") {
            self.symlink(&format!("/bin/{applet}"), "busybox")?;
        }
        Ok(())
    }

    /// Adds a directory.
    pub fn dir(&mut self, path: &str, mode: u32) -> Result<(), InitramfsError> {
        self.insert(path, Node::Dir { mode })
    }

    /// Adds a regular file.
    pub fn file(&mut self, path: &str, data: Vec<u8>, mode: u32) -> Result<(), InitramfsError> {
        let size = data.len() as u64;
        if size > u64::from(u32::MAX) {
            return Err(InitramfsError::FileTooLarge {
                path: path.into(),
                size,
            });
        }
        self.insert(path, Node::File { data, mode })
    }

    /// Adds a symbolic link.
    pub fn symlink(&mut self, path: &str, target: &str) -> Result<(), InitramfsError> {
        self.insert(
            path,
            Node::Symlink {
                target: target.into(),
            },
        )
    }

    /// Adds a character device node `(major, minor)`.
    pub fn char_device(
        &mut self,
        path: &str,
        mode: u32,
        (major, minor): (u32, u32),
    ) -> Result<(), InitramfsError> {
        self.insert(path, Node::CharDevice { mode, major, minor })
    }

    /// Adds a block device node `(major, minor)`.
    pub fn block_device(
        &mut self,
        path: &str,
        mode: u32,
        (major, minor): (u32, u32),
    ) -> Result<(), InitramfsError> {
        self.insert(path, Node::BlockDevice { mode, major, minor })
    }

    /// The nodes, keyed by path without the leading `/`.
    pub fn nodes(&self) -> &BTreeMap<String, Node> {
        &self.nodes
    }

    fn insert(&mut self, path: &str, node: Node) -> Result<(), InitramfsError> {
        let rel = normalize(path)?;
        if self.nodes.contains_key(&rel) {
            return Err(InitramfsError::Duplicate { path: path.into() });
        }
        // Create the parents so callers can add `/bin/x` without `/bin`.
        let mut parent = String::new();
        for comp in rel
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map_or(&[][..], |(_, p)| p)
        {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(comp);
            match self.nodes.get(&parent) {
                Some(Node::Dir { .. }) => {}
                Some(_) => {
                    return Err(InitramfsError::ParentNotDir {
                        path: path.into(),
                        parent: format!("/{parent}"),
                    });
                }
                None => {
                    self.nodes.insert(parent.clone(), Node::Dir { mode: 0o755 });
                }
            }
        }
        self.nodes.insert(rel, node);
        Ok(())
    }

    /// The archive: every node in path order (parents before children),
    /// then the `TRAILER!!!` entry.
    pub fn to_bytes(&self) -> Result<Vec<u8>, InitramfsError> {
        let mut out = Vec::new();
        for (ino, (name, node)) in self.nodes.iter().enumerate() {
            let (kind, perm, data, rdev): (_, _, &[u8], _) = match node {
                Node::Dir { mode } => (ModeFileType::Directory, *mode, &[], (0, 0)),
                Node::File { data, mode } => (ModeFileType::Regular, *mode, data, (0, 0)),
                Node::Symlink { target } => {
                    (ModeFileType::Symlink, 0o777, target.as_bytes(), (0, 0))
                }
                Node::CharDevice { mode, major, minor } => {
                    (ModeFileType::Char, *mode, &[], (*major, *minor))
                }
                Node::BlockDevice { mode, major, minor } => {
                    (ModeFileType::Block, *mode, &[], (*major, *minor))
                }
            };
            let nlink = if matches!(node, Node::Dir { .. }) {
                2
            } else {
                1
            };
            let mut w = Builder::new(name)
                .ino(ino as u32 + 1)
                .mode(perm & 0o7777)
                .set_mode_file_type(kind)
                .nlink(nlink)
                .rdev_major(rdev.0)
                .rdev_minor(rdev.1)
                .write(&mut out, data.len() as u32);
            w.write_all(data)?;
            w.finish()?;
        }
        cpio::newc::trailer(&mut out)?;
        Ok(out)
    }
}

/// `/a/b` -> `a/b`, refusing what the kernel's unpacker would misplace.
fn normalize(path: &str) -> Result<String, InitramfsError> {
    let bad = |reason| InitramfsError::BadPath {
        path: path.into(),
        reason,
    };
    let rel = path.trim_start_matches('/').trim_end_matches('/');
    if rel.is_empty() {
        return Err(bad("empty (the root directory exists implicitly)"));
    }
    if rel.contains('\0') {
        return Err(bad("contains a NUL byte"));
    }
    if rel
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(bad("empty, `.` or `..` component"));
    }
    Ok(rel.to_string())
}

#[cfg(test)]
mod tests;
