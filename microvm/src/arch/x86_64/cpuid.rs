//! The CPUID the guest sees: KVM's supported set, with the topology filled
//! in per vCPU and the hypervisor bit set.

use kvm_bindings::{CpuId, KVM_MAX_CPUID_ENTRIES};
use std::sync::OnceLock;

use kvm_ioctls::Kvm;

use crate::error::Error;

const LEAF_FEATURES: u32 = 1;
const LEAF_EXT_TOPOLOGY: u32 = 0xb;
const ECX_VMX: u32 = 1 << 5;
const ECX_HYPERVISOR: u32 = 1 << 31;
const EDX_HTT: u32 = 1 << 28;

/// What KVM can offer a guest on this host. Asked once per process (the
/// answer cannot change while the module is loaded; the ioctl costs ~0.1 ms).
pub fn supported(kvm: &Kvm) -> Result<CpuId, Error> {
    static SUPPORTED: OnceLock<CpuId> = OnceLock::new();
    if let Some(c) = SUPPORTED.get() {
        return Ok(c.clone());
    }
    let c = kvm
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(Error::kvm("KVM_GET_SUPPORTED_CPUID"))?;
    Ok(SUPPORTED.get_or_init(|| c).clone())
}

/// The CPUID for vCPU `id` of `count`.
pub fn for_vcpu(base: &CpuId, id: u8, count: u8) -> CpuId {
    let mut cpuid = base.clone();
    for e in cpuid.as_mut_slice() {
        match e.function {
            LEAF_FEATURES => {
                // APIC id, logical processor count, CLFLUSH line size (8 x 8 bytes).
                e.ebx = (u32::from(id) << 24) | (u32::from(count) << 16) | (8 << 8);
                // No nested virtualization promised; we are a hypervisor.
                e.ecx = (e.ecx & !ECX_VMX) | ECX_HYPERVISOR;
                if count > 1 {
                    e.edx |= EDX_HTT;
                } else {
                    e.edx &= !EDX_HTT;
                }
            }
            LEAF_EXT_TOPOLOGY => e.edx = u32::from(id),
            _ => {}
        }
    }
    cpuid
}

#[cfg(test)]
mod tests {
    use super::*;
    use kvm_bindings::kvm_cpuid_entry2;

    #[test]
    fn topology_and_hypervisor_bit_are_set_per_vcpu() {
        let base = CpuId::from_entries(&[
            kvm_cpuid_entry2 {
                function: 1,
                ecx: ECX_VMX,
                ebx: 0xffff_ffff,
                ..Default::default()
            },
            kvm_cpuid_entry2 {
                function: 0xb,
                ..Default::default()
            },
        ])
        .unwrap();
        let c = for_vcpu(&base, 2, 4);
        let l1 = c.as_slice()[0];
        assert_eq!(l1.ebx >> 24, 2);
        assert_eq!((l1.ebx >> 16) & 0xff, 4);
        assert_eq!(l1.ecx & ECX_VMX, 0);
        assert_ne!(l1.ecx & ECX_HYPERVISOR, 0);
        assert_ne!(l1.edx & EDX_HTT, 0);
        assert_eq!(c.as_slice()[1].edx, 2);
    }
}
