//! Boots a tiny guest repeatedly and prints median VMM set-up, boot-to-ready
//! and total times, and the memory accounting of the last run.
//!
//! `cargo run --release -p microvm --example boot_times [-- IMAGE.elf [RUNS]]`
//! Without an image, a hand-assembled guest (ready marker, then exit) is used.
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

use std::io::Write;
use std::time::Duration;

use microvm::{GuestImage, VmConfig};

/// `mov dx, 0x500 ; out dx, al ; mov dx, 0x501 ; xor eax, eax ; out dx, eax ; jmp $`
const READY_THEN_EXIT: [u8; 16] = [
    0x66, 0xba, 0x00, 0x05, 0xee, 0x66, 0xba, 0x01, 0x05, 0x31, 0xc0, 0xef, 0xeb, 0xfe, 0x90, 0x90,
];

/// A minimal ELF (one PT_LOAD at 1 MiB) around `code`.
fn elf(code: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 120];
    b[..8].copy_from_slice(b"\x7fELF\x02\x01\x01\x00");
    b[16] = 2; // ET_EXEC
    b[18] = 62; // x86-64
    b[20] = 1;
    b[24..32].copy_from_slice(&0x10_0000u64.to_le_bytes());
    b[32] = 64; // e_phoff
    b[52] = 64;
    b[54] = 56;
    b[56] = 1;
    b[64] = 1; // PT_LOAD
    b[68] = 5; // R+X
    b[72] = 120; // p_offset
    b[80..88].copy_from_slice(&0x10_0000u64.to_le_bytes());
    b[88..96].copy_from_slice(&0x10_0000u64.to_le_bytes());
    b[96..104].copy_from_slice(&(code.len() as u64).to_le_bytes());
    b[104..112].copy_from_slice(&(code.len() as u64).to_le_bytes());
    b.extend_from_slice(code);
    b
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut tmp = None;
    let image = match args.next() {
        Some(p) => p.into(),
        None => {
            let mut f = tempfile::NamedTempFile::new()?;
            f.write_all(&elf(&READY_THEN_EXIT))?;
            let p = f.path().to_path_buf();
            tmp = Some(f);
            p
        }
    };
    let runs: usize = args.next().map(|r| r.parse()).transpose()?.unwrap_or(50);
    let config = VmConfig {
        memory_bytes: 128 << 20,
        image: GuestImage::Tiny {
            elf: image,
            cmdline: String::new(),
        },
        ..VmConfig::tiny("", "")
    };
    let (mut setup, mut ready, mut total) = (Vec::new(), Vec::new(), Vec::new());
    let mut last = None;
    for _ in 0..runs {
        let out = microvm::run(&config)?;
        setup.push(out.timings.setup);
        ready.push(out.timings.ready.unwrap_or_default());
        total.push(out.timings.total);
        last = Some(out);
    }
    let last = last.ok_or("no runs")?;
    println!("runs: {runs}, exit of the last: {}", last.exit.explain());
    println!(
        "median setup (run() start -> first KVM_RUN): {:?}",
        median(setup)
    );
    println!(
        "median ready (run() start -> first write to 0x500): {:?}",
        median(ready)
    );
    println!("median total: {:?}", median(total));
    println!(
        "VMM overhead: {} KiB, guest RAM touched: {} KiB",
        last.memory.vmm_overhead_bytes >> 10,
        last.memory.guest_touched_bytes >> 10
    );
    drop(tmp);
    Ok(())
}
