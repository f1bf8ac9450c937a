//! An emulated hardware-KVM host: QEMU's TCG emulating an AMD CPU with SVM
//! and nested paging, booting Debian's stock kernel, which loads `kvm_amd`
//! and so offers a `/dev/kvm` that behaves like hardware KVM. isolab's own
//! VMM runs inside it, where the project's machines (a software-assisted
//! KVM) cannot run a Linux guest; so does a pure cgroup v2 host.
//!
//! Inside, the root file system is this machine's `/`, read-only over 9p
//! with a tmpfs on top, so every binary, library and cache of the host is
//! there at the same path; one directory (the checkout) is shared
//! read-write at its own path, so results written inside land on the host.
//! Times measured inside are emulated: they say nothing about hardware.
//!
//! [`image::prepare`] builds the boot files once (cached by content);
//! [`run::run`] boots them and runs one command.

pub mod image;
pub mod modules;
pub mod package;
pub mod run;

use std::path::{Path, PathBuf};

pub use image::Image;
pub use run::RunSpec;

/// The word on the test host's kernel command line by which programs
/// inside know they run in it (and that their times are emulated).
pub const CMDLINE_MARK: &str = hostcaps::emulation::TESTHOST_MARK;

/// Errors preparing or running the test host.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tool the test host needs is missing.
    #[error("the test host needs {tool}: run `{hint}`")]
    ToolMissing {
        /// The program.
        tool: &'static str,
        /// How to install it.
        hint: &'static str,
    },
    /// Finding or fetching the kernel package failed.
    #[error("kernel package: {0}")]
    Package(String),
    /// A kernel module (or a dependency) is missing or unreadable.
    #[error("kernel module {name}: {reason}")]
    Module {
        /// The module.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The initramfs could not be assembled.
    #[error(transparent)]
    Initramfs(#[from] microvm::boot::initramfs::InitramfsError),
    /// A bad request (share directory, command).
    #[error("{0}")]
    BadInput(String),
    /// The test host ended without reporting the command's status.
    #[error(
        "the test host stopped before the command finished ({why}); its console ended with:\n{console}"
    )]
    NoStatus {
        /// How it ended.
        why: String,
        /// The last lines of its console.
        console: String,
    },
    /// File-system or process error.
    #[error("{path}: {source}")]
    Io {
        /// The file, directory or program.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl Error {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |source| Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
