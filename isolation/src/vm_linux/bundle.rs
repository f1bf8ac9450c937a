//! The same OCI bundle in the micro VM (the Kata Containers idea): the
//! bundle's rootfs becomes the guest's root file system and its process
//! runs there with its environment, working directory, ids and hostname.
//!
//! The config is hostile input. It is size-checked, then read by the
//! container runtime's own loader (`container::oci::load_bundle`: the same
//! checks and mapping as `--isolation container`); the process is bounded
//! by [`GuestProcess::to_bytes`]; the working directory is resolved inside
//! the rootfs with `openat2(RESOLVE_BENEATH)`, so a symlink or `..` leading
//! out of it is refused rather than followed. The rootfs becomes an ext4
//! image on the virtio-blk disk ([`rootfs_image`]); the description goes
//! into a small archive appended to the cached initramfs, and `/init
//! bundle` (`workload::linux::bundle`) does the rest in the guest.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use container::{ContainerSpec, RootSpec};
use microvm::boot::initramfs::Initramfs;
use microvm::boot::linux::{CmdlineBuilder, LinuxBoot};
use microvm::{GuestImage, VmConfig};
use workload::linux::guest_process::{self, GuestProcess};

use super::initramfs_cache::{self, InitramfsSpec};
use super::{DEFAULT_MEMORY, Prepared, VmLinux, rootfs_image};
use crate::{Invocation, IsolationError, Limits, kernel};

/// Largest `config.json` read.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Host-side costs of preparing a bundle run, for the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PrepareTimes {
    /// Reading and checking the config.
    pub config: Duration,
    /// Building the ext4 image of the rootfs.
    pub image: Duration,
    /// The initramfs: the cached base plus the process archive.
    pub initramfs: Duration,
}

fn bad(msg: impl Into<String>) -> IsolationError {
    IsolationError::BadInput(msg.into())
}

/// The bundle's spec, its rootfs, and the guest's process. `invocation`
/// replaces `process.args` unless its program is empty.
pub fn load(
    dir: &Path,
    invocation: &Invocation,
) -> Result<(ContainerSpec, PathBuf, GuestProcess), IsolationError> {
    let config = dir.join("config.json");
    let len = std::fs::metadata(&config)
        .map_err(|source| IsolationError::Io {
            context: format!("reading {}", config.display()),
            source,
        })?
        .len();
    if len > MAX_CONFIG_BYTES {
        return Err(bad(format!(
            "{}: {len} bytes, more than the limit of {MAX_CONFIG_BYTES}",
            config.display()
        )));
    }
    let spec = container::oci::load_bundle(dir)?;
    let (rootfs, process) = from_spec(&spec, invocation)?;
    Ok((spec, rootfs, process))
}

/// The rootfs and the guest's process of an already loaded bundle (the OCI
/// runtime's `isolab-vm` loads it itself), checked: every bound of the
/// description and the working directory inside the rootfs.
pub fn from_spec(
    spec: &ContainerSpec,
    invocation: &Invocation,
) -> Result<(PathBuf, GuestProcess), IsolationError> {
    let RootSpec::Dir(rootfs) = &spec.root else {
        return Err(bad("the bundle has no root directory"));
    };
    let args = match invocation {
        Invocation::Program { program, args } if !program.is_empty() => {
            std::iter::once(program.clone())
                .chain(args.iter().cloned())
                .collect()
        }
        Invocation::Program { .. } => std::iter::once(spec.program.clone())
            .chain(spec.args.iter().cloned())
            .collect(),
        Invocation::Probes(_) => {
            return Err(bad(
                "probes do not run from a bundle in the VM; run a program (`isolab run`)",
            ));
        }
    };
    let process = GuestProcess {
        version: guest_process::VERSION,
        args,
        env: spec.env.clone(),
        cwd: spec.cwd.clone(),
        uid: spec.uid,
        gid: spec.gid,
        additional_gids: spec.additional_gids.clone(),
        hostname: spec.hostname.clone(),
        readonly_root: spec.readonly_root,
    };
    // Every bound, the total size included.
    process.to_bytes().map_err(|e| bad(e.to_string()))?;
    check_cwd(rootfs, &process.cwd)?;
    Ok((rootfs.clone(), process))
}

/// The working directory must be a directory inside the rootfs, reached
/// without leaving it; a missing one is made by the guest, as runc does.
pub fn check_cwd(rootfs: &Path, cwd: &str) -> Result<(), IsolationError> {
    let root = std::fs::File::open(rootfs).map_err(|source| IsolationError::Io {
        context: format!("opening the root filesystem {}", rootfs.display()),
        source,
    })?;
    let rel = CString::new(
        Path::new(cwd.trim_start_matches('/'))
            .as_os_str()
            .as_bytes(),
    )
    .map_err(|_| bad("process.cwd: contains a NUL byte"))?;
    let rel = if rel.is_empty() { c".".into() } else { rel };
    match openat2_beneath(&root, &rel) {
        Ok(_) => Ok(()),
        Err(e) => match e.raw_os_error() {
            Some(libc::ENOENT) => Ok(()),
            Some(libc::EXDEV) | Some(libc::ELOOP) => Err(bad(format!(
                "process.cwd {cwd}: leaves the bundle's root filesystem (a symlink or `..` points outside it)"
            ))),
            Some(libc::ENOTDIR) => Err(bad(format!(
                "process.cwd {cwd}: not a directory in the bundle's root filesystem"
            ))),
            _ => Err(IsolationError::Io {
                context: format!("resolving process.cwd {cwd} in {}", rootfs.display()),
                source: e,
            }),
        },
    }
}

/// `openat2(dir, path, O_PATH | O_DIRECTORY, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`.
fn openat2_beneath(dir: &std::fs::File, path: &CString) -> std::io::Result<OwnedFd> {
    const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
    const RESOLVE_BENEATH: u64 = 0x08;
    // SAFETY: open_how is plain data; all-zero is its documented default.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    // SAFETY: valid descriptor, NUL-terminated path, and an open_how of the
    // size passed; the kernel only reads them.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Notes on what a VM run of this bundle does not carry over.
fn notes(spec: &ContainerSpec, rootfs: &Path) -> Vec<String> {
    let mut notes = vec![format!(
        "bundle rootfs {} as an ext4 image on /dev/vda (changes are not written back)",
        rootfs.display()
    )];
    if spec.resources.memory.is_some() || spec.resources.cpus.is_some() {
        notes.push(
            "the bundle's memory and CPU limits are not applied in the VM (guest RAM and vCPUs come from --memory and --cpus)"
                .into(),
        );
    }
    if !spec.volumes.is_empty() {
        let list: Vec<String> = spec
            .volumes
            .iter()
            .map(|v| v.guest.display().to_string())
            .collect();
        notes.push(format!(
            "bind mounts are not shared into the VM: {}",
            list.join(", ")
        ));
    }
    notes
}

/// Everything for a VM run of the bundle at `dir`, and what each step cost.
pub fn prepare(
    vm: &VmLinux,
    dir: &Path,
    invocation: &Invocation,
    limits: &Limits,
    cache_root: &Path,
) -> Result<(Prepared, PrepareTimes), IsolationError> {
    let t = Instant::now();
    let (spec, rootfs, process) = load(dir, invocation)?;
    let config = t.elapsed();
    let (prepared, mut times) = prepare_loaded(vm, &spec, &rootfs, &process, limits, cache_root)?;
    times.config += config;
    Ok((prepared, times))
}

/// Everything for a VM run of a loaded bundle ([`from_spec`]).
pub fn prepare_loaded(
    vm: &VmLinux,
    spec: &ContainerSpec,
    rootfs: &Path,
    process: &GuestProcess,
    limits: &Limits,
    cache_root: &Path,
) -> Result<(Prepared, PrepareTimes), IsolationError> {
    let mut times = PrepareTimes::default();
    let t = Instant::now();
    let description = process.to_bytes().map_err(|e| bad(e.to_string()))?;
    times.config = t.elapsed();

    let (kernel, kernel_source) =
        kernel::resolve(vm.kernel.as_deref()).map_err(|e| bad(e.to_string()))?;
    let mut notes = vec![format!(
        "guest kernel: {} ({kernel_source:?})",
        kernel.display()
    )];
    notes.extend(self::notes(spec, rootfs));

    let t = Instant::now();
    let disk = rootfs_image::build(rootfs)?;
    times.image = t.elapsed();

    let t = Instant::now();
    let initramfs = initramfs_with(&description, cache_root)?;
    times.initramfs = t.elapsed();

    // The console carries the program's output: no early kernel messages
    // on it unless the user asked to see the console.
    let cmdline = CmdlineBuilder::new()
        .early_console(vm.serial_echo)
        .quiet(vm.quiet)
        .params(&vm.extra_cmdline)
        .init_args(["bundle"])
        .build()
        .map_err(|e| bad(e.to_string()))?;
    // A container's memory limit is not a guest size (a 4 MiB limit would
    // not boot a kernel): the guest gets --memory and --cpus only.
    let memory = limits.memory.unwrap_or(DEFAULT_MEMORY);
    let cpus = limits.cpus;
    let config = VmConfig {
        memory_bytes: memory,
        vcpus: cpus.map_or(1, |c| c.ceil().clamp(1.0, 255.0) as u8),
        image: GuestImage::Linux(LinuxBoot {
            kernel,
            initramfs: Some(initramfs),
            cmdline,
        }),
        disk: Some(disk.path()),
        timeout: limits.timeout,
        serial_echo: vm.serial_echo || vm.stream_output,
        hugepages: false,
        net: None,
    };
    Ok((
        Prepared {
            config,
            kernel_source,
            notes,
            disk: Some(disk),
            program: true,
            bundle: true,
        },
        times,
    ))
}

/// The cached initramfs (`/init` and `/dev/vda`) with an archive holding
/// the process description appended: the kernel unpacks concatenated
/// archives in order, so the cached part never changes per run.
pub fn initramfs_with(description: &[u8], cache_root: &Path) -> Result<Vec<u8>, IsolationError> {
    let init = std::fs::read(crate::artifacts::workload_binary().map_err(|e| bad(e.to_string()))?)
        .map_err(|source| IsolationError::Io {
            context: "reading the workload binary".into(),
            source,
        })?;
    let spec = InitramfsSpec {
        init,
        busybox: None,
        disk_node: true,
    };
    let cpio_err = |e: String| IsolationError::Io {
        context: "preparing the initramfs".into(),
        source: std::io::Error::other(e),
    };
    let mut bytes = initramfs_cache::get(&cache_root.join("initramfs"), &spec)
        .map_err(|e| cpio_err(e.to_string()))?;
    let mut extra = Initramfs::new();
    extra
        .file(guest_process::PROCESS_FILE, description.to_vec(), 0o400)
        .map_err(|e| cpio_err(e.to_string()))?;
    // Each archive starts on a 4-byte boundary, as the unpacker expects.
    bytes.resize(bytes.len().next_multiple_of(4), 0);
    bytes.extend(extra.to_bytes().map_err(|e| cpio_err(e.to_string()))?);
    Ok(bytes)
}
