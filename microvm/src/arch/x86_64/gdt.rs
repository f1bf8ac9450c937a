//! The flat GDT the guest is entered with, and its KVM segment registers.
//!
//! Long mode ignores base and limit for code and data; what matters is the
//! type, the L bit and the DPL, which decides whether the guest starts at
//! CPL 0 (Linux) or CPL 3 (tiny guest).

use kvm_bindings::kvm_segment;

/// Builds a segment descriptor from its access byte, flags nibble, base and limit.
pub const fn descriptor(access: u8, flags: u8, base: u32, limit: u32) -> u64 {
    let base = base as u64;
    let limit = limit as u64;
    (limit & 0xffff)
        | ((base & 0xff_ffff) << 16)
        | ((access as u64) << 40)
        | (((limit >> 16) & 0xf) << 48)
        | (((flags as u64) & 0xf) << 52)
        | (((base >> 24) & 0xff) << 56)
}

/// Kernel code selector index: 64-bit, DPL 0.
pub const KERNEL_CODE: u16 = 1;
/// Kernel data selector index: DPL 0.
pub const KERNEL_DATA: u16 = 2;
/// User data selector index: DPL 3.
pub const USER_DATA: u16 = 3;
/// User code selector index: 64-bit, DPL 3.
pub const USER_CODE: u16 = 4;
/// TSS selector index (a 16-byte system descriptor, two slots).
pub const TSS: u16 = 5;

/// The GDT, as written to guest memory (`tss_base` below 4 GiB).
pub fn table(tss_base: u32, tss_limit: u32) -> [u64; 7] {
    [
        0,
        descriptor(0x9b, 0xa, 0, 0xfffff), // present, code, exec/read, L + G
        descriptor(0x93, 0xc, 0, 0xfffff), // present, data, read/write, D/B + G
        descriptor(0xf3, 0xc, 0, 0xfffff), // as above, DPL 3
        descriptor(0xfb, 0xa, 0, 0xfffff), // as above, DPL 3
        descriptor(0x8b, 0x0, tss_base, tss_limit), // present, busy 64-bit TSS
        0,                                 // TSS base bits 63:32
    ]
}

/// The KVM view of the segment a descriptor describes, with RPL = DPL.
pub fn segment(desc: u64, index: u16) -> kvm_segment {
    let base = ((desc >> 16) & 0xff_ffff) | (((desc >> 56) & 0xff) << 24);
    let raw_limit = (desc & 0xffff) | (((desc >> 48) & 0xf) << 16);
    let g = ((desc >> 55) & 1) as u8;
    let limit = if g == 1 {
        (raw_limit << 12) | 0xfff
    } else {
        raw_limit
    } as u32;
    let dpl = ((desc >> 45) & 3) as u8;
    let present = ((desc >> 47) & 1) as u8;
    kvm_segment {
        base,
        limit,
        selector: (index << 3) | u16::from(dpl),
        type_: ((desc >> 40) & 0xf) as u8,
        present,
        dpl,
        db: ((desc >> 54) & 1) as u8,
        s: ((desc >> 44) & 1) as u8,
        l: ((desc >> 53) & 1) as u8,
        g,
        avl: ((desc >> 52) & 1) as u8,
        unusable: u8::from(present == 0),
        padding: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_code_descriptor_is_the_canonical_flat_64bit_one() {
        assert_eq!(table(0, 0x67)[KERNEL_CODE as usize], 0x00af_9b00_0000_ffff);
        assert_eq!(table(0, 0x67)[USER_CODE as usize], 0x00af_fb00_0000_ffff);
    }

    #[test]
    fn segments_decode_dpl_and_long_mode() {
        let t = table(0x600, 0x67);
        let uc = segment(t[USER_CODE as usize], USER_CODE);
        assert_eq!(
            (uc.dpl, uc.l, uc.selector, uc.limit),
            (3, 1, 0x23, 0xffff_ffff)
        );
        let tss = segment(t[TSS as usize], TSS);
        assert_eq!(
            (tss.base, tss.limit, tss.type_, tss.s),
            (0x600, 0x67, 0xb, 0)
        );
    }
}
