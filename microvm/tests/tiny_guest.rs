//! Hand-assembled tiny guests entered at CPL 3 in long mode, run through
//! `microvm::run`.

mod common;

use common::asm;
use microvm::VmExit;

#[test]
fn cpl3_guest_does_port_io_and_exits() {
    if !common::kvm("cpl3_guest_does_port_io_and_exits") {
        return;
    }
    let mut code = asm::outb(0x500, 1); // ready marker
    for b in b"hi" {
        code.extend(asm::outb(0x3f8, *b)); // serial
    }
    for b in b"{}\n" {
        code.extend(asm::outb(0x502, *b)); // isolab output
    }
    code.extend(asm::exit(42));
    let img = common::image(&code);
    let out = microvm::run(&common::config(&img)).unwrap();
    assert_eq!(
        out.exit,
        VmExit::GuestExit { code: 42 },
        "{}",
        out.exit.explain()
    );
    assert_eq!(out.serial, b"hi");
    assert_eq!(out.output, b"{}\n");
    let ready = out.timings.ready.expect("ready marker seen");
    assert!(
        out.timings.setup <= ready && ready <= out.timings.total,
        "{:?}",
        out.timings
    );
    assert_eq!(out.stats.io_exits, 7);
    assert_eq!(out.stats.stray_io, 0);
    assert!(out.memory.guest_touched_bytes > 0);
    assert!(out.memory.vmm_overhead_bytes > 0);
    println!("timings {:?} memory {:?}", out.timings, out.memory);
}
