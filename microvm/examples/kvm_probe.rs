//! Runs the functional KVM probes and prints what they found.
//!
//! `cargo run --release -p microvm --example kvm_probe` (as root)
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

fn main() -> Result<(), microvm::Error> {
    let p = microvm::probe::functional()?;
    println!(
        "guest CPL 0: {:.1} ns/iteration ({} iterations)",
        p.cpl0_ns_per_iter, p.iterations.0
    );
    println!(
        "guest CPL 3: {:.2} ns/iteration ({} iterations)",
        p.cpl3_ns_per_iter, p.iterations.1
    );
    let verdict = if p.cpl0_emulated() {
        "emulated"
    } else {
        "native"
    };
    println!(
        "CPL 0 is {verdict} ({:.0}x slower than CPL 3)",
        p.cpl0_slowdown
    );
    println!(
        "exceptions delivered: {} ({})",
        p.exceptions_delivered, p.exception_detail
    );
    println!(
        "CPL-3 guest with port I/O: {}",
        if p.cpl3_guest_ok { "ok" } else { "failed" }
    );
    println!(
        "linux_guest: {}, tiny_guest: {}",
        if p.linux_guest_supported() {
            "supported"
        } else {
            "unsupported"
        },
        if p.tiny_guest_supported() {
            "supported"
        } else {
            "unsupported"
        }
    );
    println!("probes took {:?}", p.elapsed);
    Ok(())
}
