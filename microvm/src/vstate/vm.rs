//! The VM: a KVM VM file descriptor with guest RAM registered in it.

use kvm_bindings::{KVM_PIT_SPEAKER_DUMMY, kvm_pit_config, kvm_userspace_memory_region};
use kvm_ioctls::{Kvm, VmFd};
use vm_memory::{GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};

use super::vcpu::Vcpu;
use crate::arch::x86_64::layout::KVM_TSS_ADDR;
use crate::error::Error;

/// A VM and its memory. Field order matters: the VM fd is closed before the
/// memory it maps is unmapped.
pub struct Vm {
    fd: VmFd,
    kvm: Kvm,
    memory: GuestMemoryMmap,
}

impl Vm {
    /// Opens `/dev/kvm`, creates a VM and registers `memory` as its RAM.
    pub fn new(memory: GuestMemoryMmap) -> Result<Vm, Error> {
        let kvm = Kvm::new().map_err(Error::kvm("open /dev/kvm"))?;
        Vm::with_kvm(kvm, memory)
    }

    /// As [`Vm::new`] with an already open `/dev/kvm`.
    pub fn with_kvm(kvm: Kvm, memory: GuestMemoryMmap) -> Result<Vm, Error> {
        let fd = kvm.create_vm().map_err(Error::kvm("KVM_CREATE_VM"))?;
        for (slot, region) in memory.iter().enumerate() {
            let r = kvm_userspace_memory_region {
                slot: slot as u32,
                flags: 0,
                guest_phys_addr: region.start_addr().0,
                memory_size: region.len(),
                userspace_addr: region.as_ptr() as u64,
            };
            // SAFETY: the region is a live mapping owned by `memory`, which the
            // returned Vm keeps alive for as long as the VM fd exists.
            unsafe { fd.set_user_memory_region(r) }
                .map_err(Error::kvm("KVM_SET_USER_MEMORY_REGION"))?;
        }
        Ok(Vm { fd, kvm, memory })
    }

    /// The KVM system handle.
    pub fn kvm(&self) -> &Kvm {
        &self.kvm
    }

    /// The VM file descriptor.
    pub fn fd(&self) -> &VmFd {
        &self.fd
    }

    /// Guest RAM.
    pub fn memory(&self) -> &GuestMemoryMmap {
        &self.memory
    }

    /// In-kernel interrupt controllers (PIC, IOAPIC, LAPICs) and PIT, for
    /// guests that take interrupts. Must precede vCPU creation.
    pub fn enable_irqchip(&self) -> Result<(), Error> {
        self.fd
            .set_tss_address(KVM_TSS_ADDR)
            .map_err(Error::kvm("KVM_SET_TSS_ADDR"))?;
        self.fd
            .create_irq_chip()
            .map_err(Error::kvm("KVM_CREATE_IRQCHIP"))?;
        let pit = kvm_pit_config {
            flags: KVM_PIT_SPEAKER_DUMMY,
            ..Default::default()
        };
        self.fd
            .create_pit2(pit)
            .map_err(Error::kvm("KVM_CREATE_PIT2"))
    }

    /// Creates vCPU `id`.
    pub fn create_vcpu(&self, id: u8) -> Result<Vcpu, Error> {
        let fd = self
            .fd
            .create_vcpu(u64::from(id))
            .map_err(Error::kvm("KVM_CREATE_VCPU"))?;
        Ok(Vcpu { fd, id })
    }
}
