//! The CPUID the guest sees: KVM's supported set, with the topology filled
//! in per vCPU, the hypervisor bit set and the TSC-deadline timer offered
//! where KVM emulates it.
//!
//! Topology: the VM is one package of `count` cores with one thread each,
//! APIC id = vCPU index. Every leaf that describes topology (1, 4, 0xB,
//! 0x1F, AMD 0x8000_0008 and 0x8000_001E) is rewritten so that no leaf still
//! describes the host's package, which would make a multi-vCPU guest's
//! scheduler domains (and `nproc`-sized thread pools) wrong.

use kvm_bindings::{CpuId, KVM_MAX_CPUID_ENTRIES, kvm_cpuid_entry2};
use std::sync::OnceLock;

use kvm_ioctls::{Cap, Kvm};

use crate::error::Error;

const LEAF_FEATURES: u32 = 1;
const LEAF_CACHE: u32 = 4;
const LEAF_EXT_TOPOLOGY: u32 = 0xb;
const LEAF_V2_TOPOLOGY: u32 = 0x1f;
const LEAF_AMD_FEATURES: u32 = 0x8000_0001;
const LEAF_AMD_SIZES: u32 = 0x8000_0008;
const LEAF_AMD_TOPOLOGY: u32 = 0x8000_001e;
const ECX_VMX: u32 = 1 << 5;
const ECX_TSC_DEADLINE: u32 = 1 << 24;
const ECX_HYPERVISOR: u32 = 1 << 31;
const EDX_HTT: u32 = 1 << 28;
const AMD_ECX_CMP_LEGACY: u32 = 1 << 1;
const AMD_ECX_SVM: u32 = 1 << 2;
/// `KVM_CPUID_FLAG_SIGNIFCANT_INDEX`: the entry is per sub-leaf.
const FLAG_SIGNIFICANT_INDEX: u32 = 1;
/// Level types of leaves 0xB / 0x1F (ECX[15:8]).
const LEVEL_SMT: u32 = 1;
const LEVEL_CORE: u32 = 2;

/// What KVM can offer a guest on this host, and whether it emulates the
/// TSC-deadline timer. Asked once per process (the answer cannot change
/// while the module is loaded; the ioctl costs ~0.1 ms).
pub fn supported(kvm: &Kvm) -> Result<Supported, Error> {
    static SUPPORTED: OnceLock<Supported> = OnceLock::new();
    if let Some(c) = SUPPORTED.get() {
        return Ok(c.clone());
    }
    let cpuid = kvm
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(Error::kvm("KVM_GET_SUPPORTED_CPUID"))?;
    let s = Supported {
        cpuid,
        tsc_deadline: kvm.check_extension(Cap::TscDeadlineTimer),
    };
    Ok(SUPPORTED.get_or_init(|| s).clone())
}

/// KVM's supported CPUID and the extensions that change what we offer.
#[derive(Debug, Clone)]
pub struct Supported {
    /// `KVM_GET_SUPPORTED_CPUID`.
    pub cpuid: CpuId,
    /// `KVM_CAP_TSC_DEADLINE_TIMER`: KVM emulates the TSC-deadline mode of
    /// the local APIC timer. Host kernels before about 6.13 do not report
    /// the CPUID bit in the supported set although they emulate it; without
    /// the bit a guest falls back to the PIT and calibrates its APIC timer
    /// against it (`check_timer`, ~100 ms of boot).
    pub tsc_deadline: bool,
}

/// The CPUID for vCPU `id` of `count`.
pub fn for_vcpu(base: &Supported, id: u8, count: u8) -> CpuId {
    let mut entries: Vec<kvm_cpuid_entry2> = base
        .cpuid
        .as_slice()
        .iter()
        .filter(|e| !matches!(e.function, LEAF_EXT_TOPOLOGY | LEAF_V2_TOPOLOGY))
        .copied()
        .collect();
    for e in &mut entries {
        patch(e, id, count, base.tsc_deadline);
    }
    // Leaves 0xB/0x1F are rebuilt whole: KVM may list fewer sub-leaves than
    // the topology needs.
    for leaf in [LEAF_EXT_TOPOLOGY, LEAF_V2_TOPOLOGY] {
        if base.cpuid.as_slice().iter().any(|e| e.function == leaf) {
            entries.extend((0..3).map(|sub| topology_leaf(leaf, sub, id, count)));
        }
    }
    // KVM_MAX_CPUID_ENTRIES bounds what KVM returned; we add at most six.
    CpuId::from_entries(&entries).unwrap_or_else(|_| base.cpuid.clone())
}

/// Bits needed to number `count` cores (the APIC-id shift of the core level).
fn core_bits(count: u8) -> u32 {
    u32::from(count.max(1)).next_power_of_two().trailing_zeros()
}

fn patch(e: &mut kvm_cpuid_entry2, id: u8, count: u8, tsc_deadline: bool) {
    let (id, count) = (u32::from(id), u32::from(count));
    match e.function {
        LEAF_FEATURES => {
            // APIC id, logical processors per package, CLFLUSH line (8 x 8 bytes).
            e.ebx = (id << 24) | (count << 16) | (8 << 8);
            // No nested virtualization promised; we are a hypervisor.
            e.ecx = (e.ecx & !ECX_VMX) | ECX_HYPERVISOR;
            if tsc_deadline {
                e.ecx |= ECX_TSC_DEADLINE;
            }
            if count > 1 {
                e.edx |= EDX_HTT;
            } else {
                e.edx &= !EDX_HTT;
            }
        }
        LEAF_CACHE => {
            // EAX[31:26]: cores per package - 1; EAX[25:14]: threads sharing
            // this cache - 1 (L1/L2 are per core, L3 is the package's).
            let level = (e.eax >> 5) & 0x7;
            let sharing = if level >= 3 { count - 1 } else { 0 };
            e.eax = (e.eax & 0x3fff) | (sharing << 14) | ((count - 1) << 26);
        }
        LEAF_AMD_FEATURES => {
            e.ecx &= !AMD_ECX_SVM;
            if count > 1 {
                e.ecx |= AMD_ECX_CMP_LEGACY;
            } else {
                e.ecx &= !AMD_ECX_CMP_LEGACY;
            }
        }
        LEAF_AMD_SIZES => {
            // ECX[15:12]: APIC-id bits for cores; ECX[7:0]: cores - 1.
            e.ecx = (core_bits(count as u8) << 12) | (count - 1);
        }
        LEAF_AMD_TOPOLOGY => {
            // Extended APIC id; compute unit = core, one thread; one node.
            e.eax = id;
            e.ebx = id & 0xff;
            e.ecx = 0;
        }
        _ => {}
    }
}

/// Sub-leaf `sub` of leaf 0xB or 0x1F: SMT level (one thread per core),
/// core level (`count` cores), then the invalid level that ends the list.
fn topology_leaf(leaf: u32, sub: u32, id: u8, count: u8) -> kvm_cpuid_entry2 {
    let (eax, ebx, ecx) = match sub {
        0 => (0, 1, (LEVEL_SMT << 8) | sub),
        1 => (core_bits(count), u32::from(count), (LEVEL_CORE << 8) | sub),
        _ => (0, 0, sub),
    };
    kvm_cpuid_entry2 {
        function: leaf,
        index: sub,
        flags: FLAG_SIGNIFICANT_INDEX,
        eax,
        ebx,
        ecx,
        edx: u32::from(id),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(function: u32, index: u32) -> kvm_cpuid_entry2 {
        kvm_cpuid_entry2 {
            function,
            index,
            ..Default::default()
        }
    }

    fn base(tsc_deadline: bool) -> Supported {
        let mut l1 = entry(1, 0);
        (l1.ecx, l1.ebx) = (ECX_VMX, 0xffff_ffff);
        let mut l4_l1d = entry(4, 0);
        l4_l1d.eax = (1 << 5) | 1 | (63 << 26) | (1 << 14);
        let mut l4_l3 = entry(4, 3);
        l4_l3.eax = (3 << 5) | 3 | (63 << 26) | (127 << 14);
        let mut amd1 = entry(LEAF_AMD_FEATURES, 0);
        amd1.ecx = AMD_ECX_SVM;
        let mut amd8 = entry(LEAF_AMD_SIZES, 0);
        amd8.ecx = 0x703f;
        Supported {
            cpuid: CpuId::from_entries(&[
                l1,
                l4_l1d,
                l4_l3,
                entry(0xb, 0),
                amd1,
                amd8,
                entry(LEAF_AMD_TOPOLOGY, 0),
            ])
            .unwrap(),
            tsc_deadline,
        }
    }

    fn find(c: &CpuId, function: u32, index: u32) -> kvm_cpuid_entry2 {
        *c.as_slice()
            .iter()
            .find(|e| e.function == function && e.index == index)
            .unwrap_or_else(|| panic!("no leaf {function:#x}.{index}"))
    }

    #[test]
    fn leaf_1_has_the_apic_id_the_package_size_and_the_hypervisor_bit() {
        let c = for_vcpu(&base(false), 2, 4);
        let l1 = find(&c, 1, 0);
        assert_eq!(l1.ebx >> 24, 2);
        assert_eq!((l1.ebx >> 16) & 0xff, 4);
        assert_eq!(l1.ecx & ECX_VMX, 0);
        assert_ne!(l1.ecx & ECX_HYPERVISOR, 0);
        assert_ne!(l1.edx & EDX_HTT, 0);
        assert_eq!(l1.ecx & ECX_TSC_DEADLINE, 0);
        let single = find(&for_vcpu(&base(false), 0, 1), 1, 0);
        assert_eq!(single.edx & EDX_HTT, 0);
    }

    #[test]
    fn tsc_deadline_is_offered_when_kvm_emulates_it() {
        let l1 = find(&for_vcpu(&base(true), 0, 1), 1, 0);
        assert_ne!(l1.ecx & ECX_TSC_DEADLINE, 0);
    }

    #[test]
    fn cache_leaves_describe_our_package_not_the_hosts() {
        let c = for_vcpu(&base(false), 1, 4);
        let l1d = find(&c, 4, 0);
        assert_eq!(l1d.eax >> 26, 3, "cores per package - 1");
        assert_eq!((l1d.eax >> 14) & 0xfff, 0, "L1 is per core");
        assert_eq!(l1d.eax & 0x3fff, (1 << 5) | 1, "cache type and level kept");
        let l3 = find(&c, 4, 3);
        assert_eq!((l3.eax >> 14) & 0xfff, 3, "L3 shared by the package");
    }

    #[test]
    fn extended_topology_has_smt_and_core_levels() {
        let c = for_vcpu(&base(false), 3, 4);
        let smt = find(&c, 0xb, 0);
        assert_eq!(
            (smt.eax, smt.ebx, smt.ecx >> 8, smt.edx),
            (0, 1, LEVEL_SMT, 3)
        );
        let core = find(&c, 0xb, 1);
        assert_eq!((core.eax, core.ebx, core.ecx >> 8), (2, 4, LEVEL_CORE));
        assert_eq!(core.ecx & 0xff, 1);
        assert_eq!(find(&c, 0xb, 2).ecx >> 8, 0, "the list ends");
        assert_eq!(c.as_slice().iter().filter(|e| e.function == 0xb).count(), 3);
        assert!(!c.as_slice().iter().any(|e| e.function == 0x1f));
    }

    #[test]
    fn amd_leaves_count_our_cores_and_hide_svm() {
        let c = for_vcpu(&base(false), 2, 3);
        assert_eq!(find(&c, LEAF_AMD_SIZES, 0).ecx, (2 << 12) | 2);
        let t = find(&c, LEAF_AMD_TOPOLOGY, 0);
        assert_eq!((t.eax, t.ebx, t.ecx), (2, 2, 0));
        let f = find(&c, LEAF_AMD_FEATURES, 0);
        assert_eq!(f.ecx & AMD_ECX_SVM, 0);
        assert_ne!(f.ecx & AMD_ECX_CMP_LEGACY, 0);
    }

    #[test]
    fn core_bits_round_up() {
        assert_eq!([1u8, 2, 3, 4, 5, 32].map(core_bits), [0, 1, 2, 2, 3, 5]);
    }
}
