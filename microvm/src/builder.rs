//! [`run`]: build a VM from a [`VmConfig`], run it, account for it, tear it
//! down. Everything created here is owned by locals, so every path out of
//! `run` — success, bad input, a KVM refusal — releases it all.

use std::fs::File;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use kvm_ioctls::Kvm;
use vm_memory::{GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};
use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};

use crate::accounting;
use crate::arch::x86_64::layout::{
    LINUX_BOOT_STACK, SERIAL_IRQ, TINY_BOOT_INFO, VIRTIO_BLK_IRQ, VIRTIO_BLK_MMIO,
    VIRTIO_MMIO_SIZE, VIRTIO_NET_IRQ, VIRTIO_NET_MMIO,
};
use crate::arch::x86_64::regs::{Entry, Privilege};
use crate::arch::x86_64::{cpuid, mptable, paging, regs};
use crate::boot;
use crate::config::{GuestImage, VmConfig};
use crate::devices::bus::Bus;
use crate::devices::isolab::{self, IsolabDevice};
use crate::devices::legacy::{I8042, IrqLine, SerialConsole, i8042, serial};
use crate::devices::virtio::block::{self, Block, BlockStats};
use crate::devices::virtio::mmio::MmioTransport;
use crate::devices::virtio::net::{self, Net, RxThread};
use crate::error::Error;
use crate::outcome::{VmExit, VmMemory, VmOutcome, VmTimings};
use crate::vstate::kick;
use crate::vstate::memory;
use crate::vstate::threads::VcpuThreads;
use crate::vstate::vcpu::{RunContext, Vcpu};
use crate::vstate::vm::Vm;

/// How long the end of a run waits for the console echo to reach stdout.
const ECHO_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// Most vCPUs a VM may have.
pub const MAX_VCPUS: u8 = mptable::MAX_CPUS;

/// Devices the builder keeps a handle on, to collect their results.
struct Handles {
    serial: Arc<Mutex<SerialConsole>>,
    echo: Option<serial::EchoThread>,
    isolab: Arc<Mutex<IsolabDevice>>,
    block: Option<Arc<Mutex<MmioTransport<Block>>>>,
    /// The network device and the thread delivering its frames (stopped
    /// when this is dropped, on every path out of `run`).
    net: Option<(Arc<Mutex<MmioTransport<Net>>>, RxThread)>,
}

/// Runs one VM to completion. `Err` means it could not start (bad input,
/// KVM missing or refusing); a guest that misbehaves is `Ok` with an
/// explanatory [`VmExit`].
pub fn run(config: &VmConfig) -> Result<VmOutcome, Error> {
    let start = Instant::now();
    validate(config)?;
    let disk = config.disk.as_deref().map(open_disk).transpose()?;
    let tap = config
        .net
        .as_ref()
        .map(|n| {
            net::tap::open(&n.tap).map_err(|source| Error::TapUnavailable {
                name: n.tap.clone(),
                source,
            })
        })
        .transpose()?;
    kick::install().map_err(|source| Error::Host {
        what: "vCPU kick signal handler",
        source,
    })?;

    // Thread creation overlaps with the set-up below.
    let threads = VcpuThreads::spawn(config.vcpus)?;
    let mem = memory::create(config.memory_bytes, config.hugepages)?;
    // Load the image before touching KVM: bad images fail fast and clearly.
    let tiny = load_tiny_image(config, &mem)?;
    let linux = matches!(config.image, GuestImage::Linux(_));
    let (vm, base_cpuid) = create_vm(mem, linux)?;
    let vcpus = create_vcpus(&vm, &base_cpuid, config.vcpus)?;
    let tsc_khz = guest_tsc_khz(&vcpus[0]);
    let (io, mmio, handles) = build_devices(&vm, config, (disk, tap), tsc_khz, linux)?;
    load_boot_state(vm.memory(), config, tiny, &vcpus, tsc_khz)?;

    let ctx = Arc::new(RunContext::new(io, mmio, !linux));
    let (exit, stopped_at) = threads.run(vcpus, &ctx, start + config.timeout);
    // Reading the host's facts costs a few hundred microseconds: only when needed.
    let exit = match exit {
        e @ VmExit::InternalError { .. } => e.classify(hostcaps::kvm::facts().kind),
        e => e,
    };
    let memory_use = measure_memory(vm.memory());
    Ok(collect_outcome(
        exit, memory_use, handles, &ctx, start, stopped_at,
    ))
}

/// A tiny image loaded into guest memory, with its command line.
type TinyImage<'a> = (boot::tiny::TinyElf, &'a str);

/// Loads a tiny guest's ELF into `mem`; `None` for a Linux guest, which is
/// loaded later, once the command line knows about the devices.
fn load_tiny_image<'a>(
    config: &'a VmConfig,
    mem: &GuestMemoryMmap,
) -> Result<Option<TinyImage<'a>>, Error> {
    Ok(match &config.image {
        GuestImage::Tiny { elf, cmdline } => Some((
            boot::tiny::load(mem, config.memory_bytes, elf)?,
            cmdline.as_str(),
        )),
        GuestImage::Linux(_) => None,
    })
}

/// Opens KVM, reads its supported CPUID, and creates the VM around `mem`,
/// with the in-kernel irqchip that only a Linux guest uses.
fn create_vm(mem: GuestMemoryMmap, linux: bool) -> Result<(Vm, cpuid::Supported), Error> {
    let kvm = Kvm::new().map_err(Error::kvm("open /dev/kvm"))?;
    let base_cpuid = cpuid::supported(&kvm)?;
    let vm = Vm::with_kvm(kvm, mem)?;
    if linux {
        vm.enable_irqchip()?;
    }
    Ok((vm, base_cpuid))
}

/// Creates `count` vCPUs, each with its own view of the CPUID table.
fn create_vcpus(vm: &Vm, base_cpuid: &cpuid::Supported, count: u8) -> Result<Vec<Vcpu>, Error> {
    let mut vcpus = Vec::with_capacity(usize::from(count));
    for id in 0..count {
        let vcpu = vm.create_vcpu(id)?;
        vcpu.fd
            .set_cpuid2(&cpuid::for_vcpu(base_cpuid, id, count))
            .map_err(Error::kvm("KVM_SET_CPUID2"))?;
        vcpus.push(vcpu);
    }
    Ok(vcpus)
}

/// The guest's TSC frequency, or 0 when KVM cannot say: the guest then
/// falls back to its own calibration.
fn guest_tsc_khz(vcpu: &Vcpu) -> u32 {
    vcpu.fd.get_tsc_khz().unwrap_or_else(|e| {
        tracing::debug!(%e, "KVM_GET_TSC_KHZ failed; guest clock frequency unknown");
        0
    })
}

/// Writes the descriptor tables, the boot information and page tables, and
/// the boot vCPU's registers for whichever guest `config` names.
fn load_boot_state(
    mem: &GuestMemoryMmap,
    config: &VmConfig,
    tiny: Option<TinyImage<'_>>,
    vcpus: &[Vcpu],
    tsc_khz: u32,
) -> Result<(), Error> {
    regs::write_descriptor_tables(mem)?;
    match (tiny, &config.image) {
        (Some((elf, cmdline)), _) => boot_tiny(mem, config, &elf, cmdline, vcpus, tsc_khz),
        (None, GuestImage::Linux(lb)) => boot_linux(mem, config, lb, vcpus),
        // A tiny image is always loaded above.
        (None, GuestImage::Tiny { .. }) => Ok(()),
    }
}

/// Boot info, identity paging and a user-mode entry for the tiny guest.
fn boot_tiny(
    mem: &GuestMemoryMmap,
    config: &VmConfig,
    elf: &boot::tiny::TinyElf,
    cmdline: &str,
    vcpus: &[Vcpu],
    tsc_khz: u32,
) -> Result<(), Error> {
    let blk = if config.disk.is_some() {
        VIRTIO_BLK_MMIO
    } else {
        0
    };
    boot::tiny::write_boot_info(
        mem,
        config.memory_bytes,
        elf,
        cmdline,
        u64::from(tsc_khz),
        blk,
    )?;
    let cr3 = paging::write(mem, true)?;
    let entry = Entry {
        privilege: Privilege::User,
        rip: elf.entry,
        rsp: boot::tiny::stack_top(config.memory_bytes),
        rdi: TINY_BOOT_INFO,
        rsi: 0,
    };
    regs::enter_long_mode(&vcpus[0].fd, cr3, &entry)
}

/// The kernel, zero page, MP table and paging for a Linux guest; every
/// vCPU gets the boot MSRs and a firmware-like local APIC.
fn boot_linux(
    mem: &GuestMemoryMmap,
    config: &VmConfig,
    lb: &boot::linux::LinuxBoot,
    vcpus: &[Vcpu],
) -> Result<(), Error> {
    let mut lb = lb.clone();
    use boot::linux::cmdline::{add_kernel_param, declare_virtio_mmio};
    if config.disk.is_some() {
        lb.cmdline = declare_virtio_mmio(
            &lb.cmdline,
            VIRTIO_MMIO_SIZE,
            VIRTIO_BLK_MMIO,
            VIRTIO_BLK_IRQ,
        );
    }
    if let Some(n) = &config.net {
        lb.cmdline = declare_virtio_mmio(
            &lb.cmdline,
            VIRTIO_MMIO_SIZE,
            VIRTIO_NET_MMIO,
            VIRTIO_NET_IRQ,
        );
        lb.cmdline = add_kernel_param(&lb.cmdline, &n.kernel_ip_param());
    }
    let entry = boot::linux::load(mem, &lb)?;
    mptable::write(mem, config.vcpus)?;
    let cr3 = paging::write(mem, false)?;
    let boot_entry = Entry {
        privilege: Privilege::Kernel,
        rip: entry.entry.0,
        rsp: LINUX_BOOT_STACK,
        rdi: 0,
        rsi: entry.zero_page.0,
    };
    regs::enter_long_mode(&vcpus[0].fd, cr3, &boot_entry)?;
    for v in vcpus {
        regs::write_boot_msrs(&v.fd)?;
        setup_lapic(v)?;
    }
    Ok(())
}

/// Gathers what the devices and the run context saw into the outcome.
fn collect_outcome(
    exit: VmExit,
    memory: VmMemory,
    handles: Handles,
    ctx: &RunContext,
    start: Instant,
    stopped_at: Instant,
) -> VmOutcome {
    let (serial_out, serial_dropped) = {
        let mut s = handles.serial.lock().unwrap_or_else(|p| p.into_inner());
        let echo_dropped = s.stop_echo();
        if echo_dropped > 0 {
            tracing::debug!(
                echo_dropped,
                "console bytes not echoed: stdout was not drained"
            );
        }
        s.take_output()
    };
    if let Some(t) = handles.echo {
        t.finish(ECHO_GRACE);
    }
    let (output, output_dropped, ready_at, init_at) = {
        let mut dev = handles.isolab.lock().unwrap_or_else(|p| p.into_inner());
        let (o, d) = dev.take_output();
        (o, d, dev.ready_at(), dev.init_at())
    };
    let mut stats = ctx.counters.snapshot();
    stats.dropped_output = serial_dropped + output_dropped;
    add_block_stats(&mut stats, handles.block.as_ref());
    if let Some((transport, rx)) = handles.net {
        drop(rx);
        let s = transport
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .device()
            .stats();
        stats.net_tx_frames = s.tx_frames;
        stats.net_rx_frames = s.rx_frames;
        stats.net_bad_chains = s.bad_chains;
        stats.net_dropped = s.dropped;
    }
    let timings = VmTimings {
        setup: ctx
            .first_run
            .get()
            .map(|t| t.duration_since(start))
            .unwrap_or_default(),
        ready: ready_at.map(|t| t.duration_since(start)),
        init: init_at.map(|t| t.duration_since(start)),
        total: stopped_at.duration_since(start),
    };
    VmOutcome {
        exit,
        serial: serial_out,
        output,
        timings,
        memory,
        stats,
    }
}

/// Copies the virtio-blk counters into `stats`; zeros when there is no disk.
fn add_block_stats(
    stats: &mut crate::outcome::ExitStats,
    block: Option<&Arc<Mutex<MmioTransport<Block>>>>,
) {
    let (blk, disk_mode) = block
        .map(|b| {
            let t = b.lock().unwrap_or_else(|p| p.into_inner());
            (t.device().stats(), Some(t.device().mode()))
        })
        .unwrap_or_default();
    let BlockStats {
        requests,
        bad_requests,
        direct_bytes,
        buffered_bytes,
    } = blk;
    stats.blk_requests = requests;
    stats.blk_bad_requests = bad_requests;
    stats.disk_mode = disk_mode;
    stats.blk_direct_bytes = direct_bytes;
    stats.blk_buffered_bytes = buffered_bytes;
}

fn validate(config: &VmConfig) -> Result<(), Error> {
    memory::check_size(config.memory_bytes)?;
    if config.vcpus == 0 || config.vcpus > MAX_VCPUS {
        return Err(Error::VcpuCount {
            requested: config.vcpus,
            max: MAX_VCPUS,
        });
    }
    if matches!(config.image, GuestImage::Tiny { .. }) && config.net.is_some() {
        return Err(Error::NetNeedsLinux);
    }
    if matches!(config.image, GuestImage::Tiny { .. }) && config.vcpus != 1 {
        return Err(Error::TinyVcpus {
            requested: config.vcpus,
        });
    }
    Ok(())
}

/// The disk: a buffered descriptor, whether it is read-only, and the same
/// file opened with `O_DIRECT` where the filesystem allows it.
fn open_disk(path: &Path) -> Result<Disk, Error> {
    let (file, read_only) = open_disk_buffered(path)?;
    let direct = block::open_direct(path, read_only).map_err(|source| Error::DiskUnreadable {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Disk {
        file,
        direct,
        read_only,
    })
}

/// An opened disk, for [`Block::with_direct`].
struct Disk {
    file: File,
    direct: Option<File>,
    read_only: bool,
}

fn open_disk_buffered(path: &Path) -> Result<(File, bool), Error> {
    match File::options().read(true).write(true).open(path) {
        Ok(f) => Ok((f, false)),
        // A read-only file still makes a (read-only) disk.
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EACCES | libc::EROFS | libc::EPERM)
            ) =>
        {
            File::open(path)
                .map(|f| (f, true))
                .map_err(|source| Error::DiskUnreadable {
                    path: path.to_path_buf(),
                    source,
                })
        }
        Err(source) => Err(Error::DiskUnreadable {
            path: path.to_path_buf(),
            source,
        }),
    }
    .and_then(|(f, ro)| match f.metadata() {
        Ok(m) if m.is_file() || m.file_type().is_block_device() => Ok((f, ro)),
        Ok(_) => Err(Error::DiskUnreadable {
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a regular file or block device",
            ),
        }),
        Err(source) => Err(Error::DiskUnreadable {
            path: path.to_path_buf(),
            source,
        }),
    })
}

fn build_devices(
    vm: &Vm,
    config: &VmConfig,
    (disk, tap): (Option<Disk>, Option<File>),
    tsc_khz: u32,
    linux: bool,
) -> Result<(Bus, Bus, Handles), Error> {
    let irq = |gsi: u32| -> Result<IrqLine, Error> {
        if !linux {
            return Ok(IrqLine::none());
        }
        let evt = EventFd::new(EFD_NONBLOCK).map_err(|source| Error::Host {
            what: "eventfd",
            source,
        })?;
        vm.fd()
            .register_irqfd(&evt, gsi)
            .map_err(Error::kvm("KVM_IRQFD"))?;
        Ok(IrqLine::eventfd(evt))
    };
    let overlap = |e: crate::devices::bus::Overlap| Error::GuestMemory(e.to_string());
    let mut io = Bus::new();
    let mut mmio = Bus::new();
    let (echo, echo_thread) = start_echo(config.serial_echo)?;
    let serial = Arc::new(Mutex::new(SerialConsole::new(irq(SERIAL_IRQ)?, echo)));
    io.insert(serial::BASE, serial::LEN, serial.clone())
        .map_err(overlap)?;
    io.insert(i8042::BASE, i8042::LEN, Arc::new(Mutex::new(I8042)))
        .map_err(overlap)?;
    let isolab_dev = Arc::new(Mutex::new(IsolabDevice::new(tsc_khz)));
    io.insert(isolab::BASE, isolab::LEN, isolab_dev.clone())
        .map_err(overlap)?;
    let block = match disk {
        Some(disk) => {
            let transport = block_transport(vm, disk, || irq(VIRTIO_BLK_IRQ))?;
            mmio.insert(VIRTIO_BLK_MMIO, VIRTIO_MMIO_SIZE, transport.clone())
                .map_err(overlap)?;
            Some(transport)
        }
        None => None,
    };
    let net = match (tap, &config.net) {
        (Some(tap), Some(n)) => {
            let transport = net_transport(vm, tap, n.mac, irq(VIRTIO_NET_IRQ)?)?;
            mmio.insert(VIRTIO_NET_MMIO, VIRTIO_MMIO_SIZE, transport.clone())
                .map_err(overlap)?;
            let rx = RxThread::start(transport.clone()).map_err(|source| Error::Host {
                what: "virtio-net receive thread",
                source,
            })?;
            Some((transport, rx))
        }
        _ => None,
    };
    Ok((
        io,
        mmio,
        Handles {
            serial,
            echo: echo_thread,
            isolab: isolab_dev,
            block,
            net,
        },
    ))
}

/// The thread that copies the console to stdout, when asked for.
fn start_echo(wanted: bool) -> Result<(Option<serial::Echo>, Option<serial::EchoThread>), Error> {
    if !wanted {
        return Ok((None, None));
    }
    let (e, t) = serial::Echo::start().map_err(|source| Error::Host {
        what: "serial echo thread",
        source,
    })?;
    Ok((Some(e), Some(t)))
}

/// The virtio-blk device over `disk`, behind its MMIO transport. `irq` is
/// called only once the device exists: the interrupt line (an eventfd and
/// `KVM_IRQFD`) is made only for a backing file the device accepted.
fn block_transport(
    vm: &Vm,
    disk: Disk,
    irq: impl FnOnce() -> Result<IrqLine, Error>,
) -> Result<Arc<Mutex<MmioTransport<Block>>>, Error> {
    let Disk {
        file,
        direct,
        read_only,
    } = disk;
    let dev = Block::with_direct(file, direct, read_only).map_err(|source| Error::Host {
        what: "virtio-blk backing file",
        source,
    })?;
    Ok(Arc::new(Mutex::new(MmioTransport::new(
        dev,
        vm.memory().clone(),
        irq()?,
    ))))
}

/// The virtio-net device over `tap`, behind its MMIO transport.
fn net_transport(
    vm: &Vm,
    tap: File,
    mac: [u8; 6],
    irq: IrqLine,
) -> Result<Arc<Mutex<MmioTransport<Net>>>, Error> {
    let dev = Net::new(tap, mac).map_err(|source| Error::Host {
        what: "virtio-net wake eventfd",
        source,
    })?;
    Ok(Arc::new(Mutex::new(MmioTransport::new(
        dev,
        vm.memory().clone(),
        irq,
    ))))
}

/// LINT0 as ExtINT (the PIC) and LINT1 as NMI, as firmware would leave them.
fn setup_lapic(vcpu: &Vcpu) -> Result<(), Error> {
    const LVT_LINT0: usize = 0x350;
    const LVT_LINT1: usize = 0x360;
    const DELIVERY_EXTINT: u32 = 0x7 << 8;
    const DELIVERY_NMI: u32 = 0x4 << 8;
    let mut lapic = vcpu.fd.get_lapic().map_err(Error::kvm("KVM_GET_LAPIC"))?;
    for (off, mode) in [(LVT_LINT0, DELIVERY_EXTINT), (LVT_LINT1, DELIVERY_NMI)] {
        let bytes: [u8; 4] = std::array::from_fn(|i| lapic.regs[off + i] as u8);
        let v = (u32::from_le_bytes(bytes) & !0x700) | mode;
        for (i, b) in v.to_le_bytes().iter().enumerate() {
            lapic.regs[off + i] = *b as _;
        }
    }
    vcpu.fd
        .set_lapic(&lapic)
        .map_err(Error::kvm("KVM_SET_LAPIC"))
}

fn measure_memory(mem: &GuestMemoryMmap) -> VmMemory {
    let ranges: Vec<(u64, u64)> = mem
        .iter()
        .map(|r| (r.as_ptr() as u64, r.as_ptr() as u64 + r.len()))
        .collect();
    let guest_touched_bytes = mem
        .iter()
        .map(|r| accounting::resident_bytes(r.as_ptr(), r.len() as usize).unwrap_or(0))
        .sum();
    let vmm_overhead_bytes = accounting::vmm_overhead_bytes(&ranges).unwrap_or(0);
    VmMemory {
        vmm_overhead_bytes,
        guest_touched_bytes,
    }
}
