//! Linux 64-bit boot protocol: loads `vmlinux` (ELF) or `bzImage` with
//! `linux-loader`, writes the zero page (e820, command line, initramfs).
//!
//! Contract with the VM builder: [`load`] puts everything in guest memory and
//! returns where to enter; the builder then sets up the vCPU in 64-bit mode at
//! CPL 0 with `rsi` = zero page address. Guest memory used by the loader:
//! the zero page at [`ZERO_PAGE_START`], the command line at
//! [`CMDLINE_START`], the kernel from 1 MiB (`bzImage`) or its ELF physical
//! addresses (16 MiB for `vmlinux`), the initramfs at the top of RAM below the
//! MMIO gap. The builder keeps its GDT, page tables, stack and MP table out of
//! those ranges.

pub mod cmdline;
pub mod e820;
#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use linux_loader::loader::bootparam::{self, boot_params, setup_header};
use linux_loader::loader::{BzImage, Elf, KernelLoader, KernelLoaderResult};
use vm_memory::{Address, Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

pub use cmdline::CmdlineBuilder;

/// Guest physical address of the zero page (`boot_params`).
pub const ZERO_PAGE_START: u64 = 0x7000;
/// Guest physical address of the command line.
pub const CMDLINE_START: u64 = 0x2_0000;
/// The `HdrS` magic of the setup header (offset 0x202 of a bzImage).
pub const HDR_MAGIC: u32 = 0x5372_6448;
/// The boot sector signature at offset 0x1fe.
pub const BOOT_FLAG: u16 = 0xaa55;
/// `type_of_loader`: "undefined" boot loader (0xff).
pub const LOADER_TYPE: u8 = 0xff;
/// Boot protocol version we implement for ELF kernels (2.12: 64-bit entry).
pub const BOOT_PROTOCOL_VERSION: u16 = 0x020c;
/// Offset of the 64-bit entry from the start of a loaded bzImage payload.
pub const BZIMAGE_ENTRY_64_OFFSET: u64 = 0x200;
/// Alignment the x86 kernel expects (`CONFIG_PHYSICAL_ALIGN`).
const KERNEL_ALIGNMENT: u32 = 0x100_0000;
/// Page size: the initramfs starts on a page boundary.
const PAGE: u64 = 0x1000;

/// What to boot.
#[derive(Debug, Clone)]
pub struct LinuxBoot {
    /// `vmlinux` ELF or `bzImage`.
    pub kernel: PathBuf,
    /// A cpio newc archive, if any.
    pub initramfs: Option<Vec<u8>>,
    /// Kernel command line (see [`CmdlineBuilder`]).
    pub cmdline: String,
}

/// Where the loaded kernel is entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinuxEntry {
    /// 64-bit entry point.
    pub entry: GuestAddress,
    /// The zero page (boot_params), passed in `rsi`.
    pub zero_page: GuestAddress,
}

/// The kind of kernel image, judged from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelFormat {
    /// An ELF `vmlinux`.
    Elf,
    /// A `bzImage` (setup header with `HdrS`).
    BzImage,
}

/// Errors loading a Linux guest.
#[derive(Debug, thiserror::Error)]
pub enum LinuxError {
    /// The kernel file could not be opened or read.
    #[error("cannot read guest kernel {path}: {source}")]
    ReadKernel {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Neither an ELF file nor a bzImage.
    #[error(
        "{path} is not a Linux kernel: expected an ELF vmlinux or a bzImage (\"HdrS\" at offset 0x202)"
    )]
    NotAKernel {
        /// The file.
        path: PathBuf,
    },
    /// A bzImage without a 64-bit entry point (32-bit kernel or boot protocol < 2.12).
    #[error(
        "{path} is a bzImage without a 64-bit entry point (boot protocol {version:#06x}, xloadflags {xloadflags:#x}); build an x86_64 kernel"
    )]
    No64BitEntry {
        /// The file.
        path: PathBuf,
        /// Boot protocol version from its header.
        version: u16,
        /// Its `xloadflags`.
        xloadflags: u16,
    },
    /// linux-loader rejected the image or could not place it.
    #[error("cannot load guest kernel {path}: {source}")]
    Load {
        /// The file.
        path: PathBuf,
        /// The loader's error.
        source: linux_loader::loader::Error,
    },
    /// The kernel (with its bss / decompression room) does not fit in guest RAM.
    #[error(
        "guest kernel {path} needs guest memory up to {end:#x}, but the guest has only {mem:#x} bytes; raise --memory"
    )]
    KernelTooLarge {
        /// The file.
        path: PathBuf,
        /// End address the kernel needs.
        end: u64,
        /// Guest RAM size.
        mem: u64,
    },
    /// The command line exceeds what the kernel accepts.
    #[error("kernel command line is {len} bytes, the kernel accepts at most {max}")]
    CmdlineTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The command line contains something the kernel cannot parse.
    #[error("invalid kernel command line: {reason}")]
    CmdlineInvalid {
        /// What is wrong.
        reason: String,
    },
    /// The initramfs does not fit between the kernel and the top of low RAM.
    #[error(
        "initramfs of {size} bytes does not fit in guest memory ({room} bytes free between the kernel and {limit:#x}); raise --memory"
    )]
    InitramfsTooLarge {
        /// Its size.
        size: u64,
        /// Room available.
        room: u64,
        /// Highest address it may end at.
        limit: u64,
    },
    /// Writing to guest memory failed (address outside guest RAM).
    #[error("cannot write the {what} to guest memory at {addr:#x}: {source}")]
    GuestMemory {
        /// What was being written.
        what: &'static str,
        /// Where.
        addr: u64,
        /// The error.
        source: vm_memory::GuestMemoryError,
    },
}

/// Tells an ELF `vmlinux` from a `bzImage` by its magic numbers.
pub fn detect_format(path: &Path) -> Result<KernelFormat, LinuxError> {
    let read_err = |source| LinuxError::ReadKernel {
        path: path.to_path_buf(),
        source,
    };
    let mut f = File::open(path).map_err(read_err)?;
    let mut head = Vec::with_capacity(0x206);
    f.by_ref()
        .take(0x206)
        .read_to_end(&mut head)
        .map_err(read_err)?;
    if head.starts_with(b"\x7fELF") {
        Ok(KernelFormat::Elf)
    } else if head.len() >= 0x206 && head[0x202..0x206] == HDR_MAGIC.to_le_bytes() {
        Ok(KernelFormat::BzImage)
    } else {
        Err(LinuxError::NotAKernel {
            path: path.to_path_buf(),
        })
    }
}

/// Loads the kernel, initramfs and command line into `mem`.
pub fn load(mem: &GuestMemoryMmap, boot: &LinuxBoot) -> Result<LinuxEntry, LinuxError> {
    let path = boot.kernel.as_path();
    let format = detect_format(path)?;
    let mut file = File::open(path).map_err(|source| LinuxError::ReadKernel {
        path: path.into(),
        source,
    })?;
    let mem_end = mem.last_addr().raw_value() + 1;
    let load_err = |source| LinuxError::Load {
        path: path.into(),
        source,
    };

    let (entry, mut params, kernel_end) = match format {
        KernelFormat::Elf => {
            let res = Elf::load(mem, None, &mut file, Some(GuestAddress(e820::HIMEM_START)))
                .map_err(load_err)?;
            tracing::debug!(
                entry = res.kernel_load.0,
                end = res.kernel_end,
                "loaded vmlinux"
            );
            (res.kernel_load, elf_params(), res.kernel_end)
        }
        KernelFormat::BzImage => {
            let (res, hdr) = load_bzimage(mem, path, &mut file)?;
            let entry = res.kernel_load.unchecked_add(BZIMAGE_ENTRY_64_OFFSET);
            // The decompressor needs init_size bytes from the (aligned) load
            // address, more than the file itself.
            let need = res.kernel_load.0.max(hdr.pref_address) + u64::from(hdr.init_size);
            let mut p = zeroed_params();
            p.hdr = hdr;
            (entry, p, res.kernel_end.max(need))
        }
    };
    if kernel_end > mem_end {
        return Err(LinuxError::KernelTooLarge {
            path: path.into(),
            end: kernel_end,
            mem: mem_end,
        });
    }

    write_cmdline(mem, &mut params, &boot.cmdline, format)?;
    if let Some(initrd) = &boot.initramfs {
        write_initramfs(mem, &mut params, initrd, kernel_end)?;
    }
    write_e820(&mut params, mem_end);
    params.hdr.type_of_loader = LOADER_TYPE;
    mem.write_obj(params, GuestAddress(ZERO_PAGE_START))
        .map_err(|source| LinuxError::GuestMemory {
            what: "zero page",
            addr: ZERO_PAGE_START,
            source,
        })?;
    Ok(LinuxEntry {
        entry,
        zero_page: GuestAddress(ZERO_PAGE_START),
    })
}

/// Loads a bzImage's protected-mode payload at its preferred 1 MiB and checks
/// that it has a 64-bit entry.
fn load_bzimage(
    mem: &GuestMemoryMmap,
    path: &Path,
    file: &mut File,
) -> Result<(KernelLoaderResult, setup_header), LinuxError> {
    let res = BzImage::load(mem, None, file, Some(GuestAddress(e820::HIMEM_START))).map_err(
        |source| LinuxError::Load {
            path: path.into(),
            source,
        },
    )?;
    let hdr = res
        .setup_header
        .expect("bzImage loader returns the setup header");
    let (version, xloadflags) = (hdr.version, hdr.xloadflags);
    if version < BOOT_PROTOCOL_VERSION || xloadflags & bootparam::XLF_KERNEL_64 == 0 {
        return Err(LinuxError::No64BitEntry {
            path: path.into(),
            version,
            xloadflags,
        });
    }
    Ok((res, hdr))
}

/// An all-zero zero page with the magic numbers every loader sets.
fn zeroed_params() -> boot_params {
    let mut p = boot_params::default();
    p.hdr.boot_flag = BOOT_FLAG;
    p.hdr.header = HDR_MAGIC;
    p
}

/// The header an ELF `vmlinux` would have had, had it come with a setup sector.
fn elf_params() -> boot_params {
    let mut p = zeroed_params();
    p.hdr.version = BOOT_PROTOCOL_VERSION;
    p.hdr.kernel_alignment = KERNEL_ALIGNMENT;
    p.hdr.loadflags = bootparam::LOADED_HIGH;
    p
}

/// The longest command line `format`'s header allows.
fn cmdline_max(params: &boot_params, format: KernelFormat) -> usize {
    let (version, size) = (params.hdr.version, params.hdr.cmdline_size);
    match format {
        KernelFormat::BzImage if version >= 0x0206 && size > 0 => size as usize,
        KernelFormat::BzImage => 255,
        KernelFormat::Elf => cmdline::DEFAULT_CMDLINE_MAX,
    }
}

fn write_cmdline(
    mem: &GuestMemoryMmap,
    params: &mut boot_params,
    cmdline: &str,
    format: KernelFormat,
) -> Result<(), LinuxError> {
    cmdline::check_len(cmdline, cmdline_max(params, format))?;
    if let Some(pos) = cmdline.find(|c: char| !(' '..='~').contains(&c)) {
        return Err(LinuxError::CmdlineInvalid {
            reason: format!("byte {pos} is not printable ASCII"),
        });
    }
    let mut bytes = cmdline.as_bytes().to_vec();
    bytes.push(0);
    mem.write_slice(&bytes, GuestAddress(CMDLINE_START))
        .map_err(|source| LinuxError::GuestMemory {
            what: "command line",
            addr: CMDLINE_START,
            source,
        })?;
    params.hdr.cmd_line_ptr = CMDLINE_START as u32;
    params.ext_cmd_line_ptr = 0;
    // cmdline_size is read-only for loaders of bzImages; for ELF it records ours.
    if format == KernelFormat::Elf {
        params.hdr.cmdline_size = cmdline::DEFAULT_CMDLINE_MAX as u32;
    }
    Ok(())
}

/// Places the initramfs page-aligned at the top of low RAM (and below the
/// kernel's `initrd_addr_max` when it states one).
fn write_initramfs(
    mem: &GuestMemoryMmap,
    params: &mut boot_params,
    initrd: &[u8],
    kernel_end: u64,
) -> Result<(), LinuxError> {
    let mem_end = mem.last_addr().raw_value() + 1;
    let mut limit = e820::low_ram_end(mem_end);
    let addr_max = params.hdr.initrd_addr_max;
    if addr_max != 0 {
        limit = limit.min(u64::from(addr_max) + 1);
    }
    let floor = kernel_end.next_multiple_of(PAGE);
    let size = initrd.len() as u64;
    let room = limit.saturating_sub(floor);
    let start = limit.checked_sub(size).map(|s| s & !(PAGE - 1));
    let start = match start {
        Some(s) if s >= floor => s,
        _ => return Err(LinuxError::InitramfsTooLarge { size, room, limit }),
    };
    mem.write_slice(initrd, GuestAddress(start))
        .map_err(|source| LinuxError::GuestMemory {
            what: "initramfs",
            addr: start,
            source,
        })?;
    params.hdr.ramdisk_image = start as u32;
    params.hdr.ramdisk_size = size as u32;
    params.ext_ramdisk_image = (start >> 32) as u32;
    params.ext_ramdisk_size = (size >> 32) as u32;
    tracing::debug!(start, size, "initramfs placed");
    Ok(())
}

fn write_e820(params: &mut boot_params, mem_end: u64) {
    let map = e820::memory_map(mem_end);
    for (slot, e) in params.e820_table.iter_mut().zip(&map) {
        *slot = (*e).into();
    }
    params.e820_entries = map.len().min(bootparam::E820_MAX_ENTRIES_ZEROPAGE) as u8;
}

/// Reads the `boot_params` back from guest memory (for tests and diagnostics).
pub fn read_zero_page(mem: &GuestMemoryMmap, at: GuestAddress) -> Option<boot_params> {
    mem.read_obj(at).ok()
}
