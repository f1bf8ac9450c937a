//! Fuzzes the port-I/O side a guest reaches with `in`/`out`: a bus holding
//! the isolab device, the serial console and the i8042, driven by a random
//! sequence of reads and writes of every width around their ports. Besides
//! never panicking, the bus must keep the guest ABI (ARCHITECTURE.md):
//! unclaimed or refused reads return all ones, the ping port answers `0x5a`,
//! only a write to `0x501` exits (with the written value), only `0xfe` on
//! `0x64` resets, only a byte to the serial data port can power off, and the output stream is exactly the bytes written to
//! `0x502`.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run isolab_device -- -max_total_time=30` (from `microvm/`).

#![no_main]

use std::sync::{Arc, Mutex};

use libfuzzer_sys::fuzz_target;
use microvm::devices::bus::{Bus, IoResult, VmAction};
use microvm::devices::isolab::{self, IsolabDevice};
use microvm::devices::legacy::i8042::{self, I8042};
use microvm::devices::legacy::serial::{self, IrqLine, SerialConsole};

const TSC_KHZ: u32 = 2_345_678;

fuzz_target!(|data: &[u8]| {
    let dev = Arc::new(Mutex::new(IsolabDevice::new(TSC_KHZ)));
    let mut bus = Bus::new();
    bus.insert(isolab::BASE, isolab::LEN, dev.clone()).unwrap();
    bus.insert(i8042::BASE, i8042::LEN, Arc::new(Mutex::new(I8042)))
        .unwrap();
    bus.insert(
        serial::BASE,
        serial::LEN,
        Arc::new(Mutex::new(SerialConsole::new(IrqLine::none(), None))),
    )
    .unwrap();

    let mut expected_output = Vec::new();
    let mut ops = data;
    while ops.len() >= 3 {
        let (op, rest) = ops.split_at(3);
        let write = op[0] & 1 == 1;
        let width = [1usize, 2, 4, 3][usize::from(op[0] >> 1) & 3];
        let base = [isolab::BASE, i8042::BASE, serial::BASE, 0x80][usize::from(op[0] >> 3) & 3];
        // Around each device: a few ports below, inside and above it.
        let port = (base + u64::from(op[1] & 0x0f)).wrapping_sub(4);
        let seed = op[2];
        ops = rest;
        let inside_isolab =
            port >= isolab::BASE && port + width as u64 <= isolab::BASE + isolab::LEN;
        if write {
            let bytes: Vec<u8> = (0..width as u8)
                .map(|i| seed.wrapping_add(i.wrapping_mul(37)))
                .collect();
            let r = bus.write(port, &bytes);
            match r {
                IoResult::Action(VmAction::Exit(code)) => {
                    assert!(
                        inside_isolab && port == isolab::BASE + isolab::EXIT,
                        "exit from port {port:#x}"
                    );
                    let mut le = [0u8; 4];
                    le[..width].copy_from_slice(&bytes);
                    assert_eq!(code, u32::from_le_bytes(le));
                    assert_ne!(width, 3, "a 3-byte exit write");
                }
                IoResult::Action(VmAction::Reset) => {
                    assert_eq!((port, bytes.as_slice()), (i8042::BASE + 4, &[0xfe][..]));
                }
                // Only a console line can announce a power-off.
                IoResult::Action(VmAction::PowerOff) => {
                    assert_eq!((port, width), (serial::BASE, 1));
                }
                IoResult::Done | IoResult::Stray => {}
            }
            if inside_isolab && port == isolab::BASE + isolab::OUTPUT {
                assert_eq!(r, IoResult::Done);
                expected_output.extend_from_slice(&bytes);
            }
        } else {
            let mut buf = vec![seed; width];
            let r = bus.read(port, &mut buf);
            if r == IoResult::Stray {
                assert!(
                    buf.iter().all(|b| *b == 0xff),
                    "stray read of {port:#x} gave {buf:02x?}"
                );
            }
            if port == isolab::BASE + isolab::PING && width == 1 {
                assert_eq!((r, buf[0]), (IoResult::Done, isolab::PING_REPLY));
            }
            if port == isolab::BASE + isolab::TSC_KHZ && width == 4 {
                assert_eq!(u32::from_le_bytes(buf[..4].try_into().unwrap()), TSC_KHZ);
            }
            assert!(
                !matches!(r, IoResult::Action(_)),
                "a read asked the VMM to act"
            );
        }
    }
    let (output, dropped) = dev.lock().unwrap().take_output();
    assert_eq!(dropped, 0);
    assert_eq!(output, expected_output);
});
