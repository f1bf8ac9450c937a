//! The smallest guest: 16-bit real-mode code that writes "Hi\n" to a port
//! and halts, driven step by step through microvm's low-level API.
//!
//! Run as root: `cargo run -p microvm --example hello_real_mode`
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

use kvm_ioctls::VcpuExit;
use microvm::vstate::{memory, vm::Vm};
use vm_memory::{Bytes, GuestAddress};

/// Guest code, loaded at 0x1000:
/// ```text
/// mov dx, 0x3f8   ; COM1 data port
/// mov al, 'H'
/// out dx, al      ; → VM exit: IoOut(0x3f8, "H")
/// mov al, 'i'
/// out dx, al
/// mov al, 10
/// out dx, al
/// hlt             ; → VM exit: Hlt
/// ```
const CODE: [u8; 13] = [
    0xba, 0xf8, 0x03, 0xb0, b'H', 0xee, 0xb0, b'i', 0xee, 0xb0, b'\n', 0xee, 0xf4,
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 1. Guest RAM: 1 MiB at guest-physical address 0, with the code in it.
    let mem = memory::create(1 << 20, false)?;
    mem.write_slice(&CODE, GuestAddress(0x1000))?;

    // 2. A VM with that RAM, and one vCPU.
    let vm = Vm::new(mem)?;
    let mut vcpu = vm.create_vcpu(0)?;

    // 3. Real mode: CS base 0, so IP = 0x1000 is GPA 0x1000.
    let mut sregs = vcpu.fd.get_sregs()?;
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    vcpu.fd.set_sregs(&sregs)?;
    let mut regs = vcpu.fd.get_regs()?;
    regs.rip = 0x1000;
    regs.rflags = 2; // bit 1 is always set
    vcpu.fd.set_regs(&regs)?;

    // 4. Run: every `out` and the `hlt` come back to us as exits.
    loop {
        match vcpu.fd.run()? {
            VcpuExit::IoOut(port, data) => {
                print!("[exit: out {port:#x}] {}", String::from_utf8_lossy(data))
            }
            VcpuExit::Hlt => {
                println!("[exit: hlt] done");
                return Ok(());
            }
            other => return Err(format!("unexpected exit {other:?}").into()),
        }
    }
}
