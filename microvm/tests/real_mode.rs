//! The smallest guest, through the low-level API: real-mode code that writes
//! to a port and halts (the same steps as `examples/hello_real_mode.rs`).
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

mod common;

use kvm_ioctls::VcpuExit;
use microvm::vstate::{memory, vm::Vm};
use vm_memory::{Bytes, GuestAddress};

#[test]
fn real_mode_guest_writes_a_port_and_halts() {
    if !common::kvm("real_mode_guest_writes_a_port_and_halts") {
        return;
    }
    // mov dx, 0x3f8 ; mov al, 'H' ; out dx, al ; mov al, 'i' ; out dx, al ; hlt
    let code = [0xba, 0xf8, 0x03, 0xb0, b'H', 0xee, 0xb0, b'i', 0xee, 0xf4];
    let mem = memory::create(1 << 20, false).unwrap();
    mem.write_slice(&code, GuestAddress(0x1000)).unwrap();
    let vm = Vm::new(mem).unwrap();
    let mut vcpu = vm.create_vcpu(0).unwrap();
    let mut sregs = vcpu.fd.get_sregs().unwrap();
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    vcpu.fd.set_sregs(&sregs).unwrap();
    let mut regs = vcpu.fd.get_regs().unwrap();
    regs.rip = 0x1000;
    regs.rflags = 2;
    vcpu.fd.set_regs(&regs).unwrap();

    let mut written = Vec::new();
    let mut halted = false;
    for _ in 0..10 {
        match vcpu.fd.run().unwrap() {
            VcpuExit::IoOut(port, data) => {
                assert_eq!(port, 0x3f8);
                written.extend_from_slice(data);
            }
            VcpuExit::Hlt => {
                halted = true;
                break;
            }
            other => panic!("unexpected exit {other:?}"),
        }
    }
    assert!(halted, "the guest must halt");
    assert_eq!(written, b"Hi");
    // rip is just past the hlt.
    assert_eq!(vcpu.fd.get_regs().unwrap().rip, 0x1000 + code.len() as u64);
}
