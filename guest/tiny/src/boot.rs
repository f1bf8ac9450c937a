//! Entry code: the 64-bit CPL-3 entry the isolab VMM jumps to, and the
//! 32-bit PVH entry (for QEMU `-M microvm`) that builds long mode itself and
//! drops to CPL 3 into the same entry.
//!
//! The PVH trampoline is deliberately short and loop-free: on software-assisted
//! KVM every CPL-0 instruction is emulated, so the page tables and the GDT are
//! laid out at link time instead of being built at run time.

use core::arch::global_asm;

/// Size of the stack used when booted through PVH (the VMM provides its own).
pub const PVH_STACK_BYTES: usize = 64 * 1024;

global_asm!(
    // --- PVH ELF note: XEN_ELFNOTE_PHYS32_ENTRY (type 18) -> pvh_start32 ---
    ".pushsection .note.Xen, \"a\", @note",
    ".balign 4",
    ".long 4",          // name size ("Xen\0")
    ".long 4",          // descriptor size
    ".long 18",         // XEN_ELFNOTE_PHYS32_ENTRY
    ".asciz \"Xen\"",
    ".balign 4",
    ".long pvh_start32",
    ".balign 4",
    ".popsection",

    // --- Static page tables: identity map of 0..4 GiB with 2 MiB pages, user
    //     accessible (covers RAM and the virtio-mmio window at 0xd000_0000). ---
    ".pushsection .data.pvh_tables, \"aw\"",
    ".balign 4096",
    "pvh_pml4:",
    ".quad pvh_pdpt + 0x7",
    ".fill 511, 8, 0",
    "pvh_pdpt:",
    ".quad pvh_pd + 0x0007",
    ".quad pvh_pd + 0x1007",
    ".quad pvh_pd + 0x2007",
    ".quad pvh_pd + 0x3007",
    ".fill 508, 8, 0",
    "pvh_pd:",
    ".set pvh_page, 0",
    ".rept 2048",
    ".quad (pvh_page << 21) | 0x87", // present, writable, user, 2 MiB page
    ".set pvh_page, pvh_page + 1",
    ".endr",
    // Flat GDT: null, kernel code64 (0x08), kernel data (0x10), user data
    // (0x18), user code64 (0x20); iretq uses the user ones with RPL 3.
    ".balign 16",
    "pvh_gdt:",
    ".quad 0",
    ".quad 0x00af9a000000ffff",
    ".quad 0x00cf92000000ffff",
    ".quad 0x00cff2000000ffff",
    ".quad 0x00affa000000ffff",
    // 0x28: 64-bit TSS (type 9, present); base filled in by pvh_start32.
    "pvh_gdt_tss:",
    ".word pvh_tss_end - pvh_tss - 1",
    ".word 0",
    ".byte 0",
    ".byte 0x89",
    ".byte 0",
    ".byte 0",
    ".quad 0",
    "pvh_gdt_end:",
    "pvh_gdt_ptr:",
    ".word pvh_gdt_end - pvh_gdt - 1",
    ".long pvh_gdt",
    // TSS whose I/O permission bitmap allows every port: software-assisted
    // KVM (kvm_pvm) runs CPL 3 with IOPL 0 whatever iretq asked for, so port
    // access at CPL 3 is granted by this bitmap.
    ".balign 16",
    "pvh_tss:",
    ".fill 102, 1, 0",
    ".word 104",                      // I/O map base: right after the TSS
    ".fill 8192, 1, 0",               // one bit per port, all allowed
    ".byte 0xff",                     // required terminator
    "pvh_tss_end:",
    ".popsection",

    // --- Stack for the PVH path. ---
    ".pushsection .noinit.pvh_stack, \"aw\", @nobits",
    ".balign 16",
    "pvh_stack_bottom:",
    ".skip {stack}",
    "pvh_stack_top:",
    ".popsection",

    // --- 32-bit PVH entry: protected mode, paging off, ebx = hvm_start_info. ---
    ".pushsection .text.boot32, \"ax\"",
    ".code32",
    ".global pvh_start32",
    "pvh_start32:",
    "mov $pvh_stack_top, %esp",
    "mov %ebx, %esi",                 // survives into rsi for the Rust entry
    "mov $pvh_tss, %eax",             // TSS base into its descriptor
    "mov %ax, pvh_gdt_tss + 2",
    "shr $16, %eax",
    "mov %al, pvh_gdt_tss + 4",
    "mov %ah, pvh_gdt_tss + 7",
    "lgdt pvh_gdt_ptr",
    "mov $pvh_pml4, %eax",
    "mov %eax, %cr3",
    "mov %cr4, %eax",
    "or $0x620, %eax",                // PAE | OSFXSR | OSXMMEXCPT
    "mov %eax, %cr4",
    "mov $0xc0000080, %ecx",          // EFER
    "rdmsr",
    "or $0x100, %eax",                // LME
    "wrmsr",
    "mov %cr0, %eax",
    "and $0xfffffffb, %eax",          // clear EM: SSE must not trap
    "or $0x80000023, %eax",           // PG | NE | MP | PE
    "mov %eax, %cr0",
    "ljmp $0x08, $pvh_long64",
    ".code64",
    "pvh_long64:",
    "mov $0x10, %eax",
    "mov %eax, %ds",
    "mov %eax, %es",
    "mov %eax, %ss",
    "mov $0x28, %eax",
    "ltr %ax",
    "pushq $0x1b",                    // SS: user data | RPL 3
    "pushq $pvh_stack_top",           // RSP
    "pushq $0x3002",                  // RFLAGS: IOPL 3, IF clear
    "pushq $0x23",                    // CS: user code | RPL 3
    "pushq $_start",                  // RIP
    "xor %edi, %edi",                 // no TinyBootInfo: this is the PVH path
    "iretq",
    ".popsection",

    // --- 64-bit entry at CPL 3 (isolab VMM: rdi = TinyBootInfo, rsp set). ---
    ".pushsection .text.entry, \"ax\"",
    ".global _start",
    "_start:",
    "mov $1, %al",
    "mov $0x500, %dx",
    "outb %al, %dx",                  // ready marker, before anything else
    "mov %rdi, %r8",
    "mov %rsi, %r9",
    "lea __bss_start(%rip), %rdi",    // zero .bss (rep stosb: no loop to emulate)
    "lea __bss_end(%rip), %rcx",
    "sub %rdi, %rcx",
    "xor %eax, %eax",
    "cld",
    "rep stosb",
    "mov %r8, %rdi",
    "mov %r9, %rsi",
    "and $-16, %rsp",
    "call {main}",
    "ud2",
    ".popsection",
    stack = const PVH_STACK_BYTES,
    main = sym crate::tiny_main,
    options(att_syntax),
);
