//! A platform for host tests: a clock that advances a fixed step per reading,
//! captured output, and an in-memory block device.

use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use alloc::boxed::Box;

use crate::kernels::net::{MODE_RR, MODE_STREAM};
use crate::platform::{
    BLOCK_ALIGN, BlockDevice, BlockError, NetError, NetListener, NetStream, Platform,
};
use crate::schema::{PlatformKind, ResultLine};

pub(crate) struct FakePlatform {
    clock: Cell<u64>,
    step: u64,
    /// Nanoseconds each kernel entry adds to the clock.
    pub(crate) entry_cost: u64,
    pub(crate) lines: Vec<String>,
    pub(crate) entries: Cell<u64>,
    pub(crate) ready_marks: u32,
    /// Shared with the device so tests can look at (or corrupt) the "disk".
    pub(crate) disk: Rc<RefCell<Vec<u8>>>,
    pub(crate) flushes: Rc<Cell<u64>>,
    pub(crate) corrupt_reads: bool,
    /// Bytes the fake peer echoed (mode bytes included) and counted.
    pub(crate) net_echoed: Rc<Cell<u64>>,
    pub(crate) net_streamed: Rc<Cell<u64>>,
    /// The fake peer echoes a wrong byte.
    pub(crate) net_corrupt: bool,
    /// Behave like a platform without a network.
    pub(crate) net_missing: bool,
}

impl FakePlatform {
    pub(crate) fn new(step: u64) -> FakePlatform {
        FakePlatform {
            clock: Cell::new(0),
            step,
            entry_cost: 0,
            lines: Vec::new(),
            entries: Cell::new(0),
            ready_marks: 0,
            disk: Rc::new(RefCell::new(Vec::new())),
            flushes: Rc::new(Cell::new(0)),
            corrupt_reads: false,
            net_echoed: Rc::new(Cell::new(0)),
            net_streamed: Rc::new(Cell::new(0)),
            net_corrupt: false,
            net_missing: false,
        }
    }

    pub(crate) fn results(&self) -> Vec<ResultLine> {
        self.lines
            .iter()
            .map(|l| serde_json::from_str(l).expect("valid result line"))
            .collect()
    }
}

impl Platform for FakePlatform {
    type Block = FakeDisk;

    fn kind(&self) -> PlatformKind {
        PlatformKind::Bare
    }

    fn now_ns(&self) -> u64 {
        let t = self.clock.get();
        self.clock.set(t + self.step);
        t
    }

    fn clock_resolution_ns(&self) -> u64 {
        self.step
    }

    fn emit(&mut self, line: &str) {
        self.lines.push(line.to_string());
    }

    fn kernel_entry(&self) {
        self.entries.set(self.entries.get() + 1);
        self.clock.set(self.clock.get() + self.entry_cost);
    }

    fn kernel_entry_kind(&self) -> &'static str {
        "vmexit"
    }

    fn open_block(&mut self, target: Option<&str>, size: u64) -> Result<FakeDisk, BlockError> {
        if target == Some("/unwritable") {
            return Err(BlockError::Open {
                target: "/unwritable".into(),
                detail: "read-only".into(),
            });
        }
        *self.disk.borrow_mut() = vec![0; size as usize];
        Ok(FakeDisk {
            disk: self.disk.clone(),
            flushes: self.flushes.clone(),
            corrupt_reads: self.corrupt_reads,
        })
    }

    fn mark_ready(&mut self) {
        self.ready_marks += 1;
    }

    fn net_dial(&mut self, _addr: core::net::SocketAddr) -> Result<Box<dyn NetStream>, NetError> {
        if self.net_missing {
            return Err(NetError::Unsupported(crate::platform::NO_NIC));
        }
        FakeListener(self.peer_factory()).accept()
    }

    fn net_listen(&mut self, _port: u16) -> Result<Box<dyn NetListener>, NetError> {
        Ok(Box::new(FakeListener(self.peer_factory())))
    }
}

impl FakePlatform {
    fn peer_factory(&self) -> (Rc<Cell<u64>>, Rc<Cell<u64>>, bool) {
        (
            self.net_echoed.clone(),
            self.net_streamed.clone(),
            self.net_corrupt,
        )
    }
}

struct FakeListener((Rc<Cell<u64>>, Rc<Cell<u64>>, bool));

impl NetListener for FakeListener {
    fn accept(&mut self) -> Result<Box<dyn NetStream>, NetError> {
        let (echoed, streamed, corrupt) = self.0.clone();
        Ok(Box::new(FakePeer {
            mode: None,
            pending: Vec::new(),
            echoed,
            streamed,
            count: 0,
            corrupt,
        }))
    }
}

/// The peer's protocol, in memory: echo or count.
struct FakePeer {
    mode: Option<u8>,
    pending: Vec<u8>,
    echoed: Rc<Cell<u64>>,
    streamed: Rc<Cell<u64>>,
    count: u64,
    corrupt: bool,
}

impl NetStream for FakePeer {
    fn write_all(&mut self, buf: &[u8]) -> Result<(), NetError> {
        let mut data = buf;
        if self.mode.is_none() {
            self.mode = Some(data[0]);
            self.echoed.set(self.echoed.get() + 1);
            data = &data[1..];
        }
        match self.mode {
            Some(MODE_RR) => {
                self.echoed.set(self.echoed.get() + data.len() as u64);
                self.pending
                    .extend(data.iter().map(|b| if self.corrupt { !b } else { *b }));
            }
            Some(MODE_STREAM) => self.count += data.len() as u64,
            _ => return Err(NetError::Protocol("unknown mode".into())),
        }
        Ok(())
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), NetError> {
        if buf.len() > self.pending.len() {
            return Err(NetError::Io {
                op: "read",
                detail: "fake peer has nothing to send".into(),
            });
        }
        let rest = self.pending.split_off(buf.len());
        buf.copy_from_slice(&self.pending);
        self.pending = rest;
        Ok(())
    }

    fn shutdown_write(&mut self) -> Result<(), NetError> {
        self.streamed.set(self.streamed.get() + self.count);
        self.echoed.set(self.echoed.get() - 1); // the mode byte was not an echo
        let n = if self.corrupt {
            self.count + 1
        } else {
            self.count
        };
        self.pending.extend_from_slice(&n.to_le_bytes());
        Ok(())
    }
}

pub(crate) struct FakeDisk {
    disk: Rc<RefCell<Vec<u8>>>,
    flushes: Rc<Cell<u64>>,
    corrupt_reads: bool,
}

impl FakeDisk {
    fn check(&self, op: &'static str, offset: u64, len: usize) -> Result<(), BlockError> {
        let aligned = offset.is_multiple_of(BLOCK_ALIGN as u64) && len.is_multiple_of(BLOCK_ALIGN);
        let inside = offset + len as u64 <= self.disk.borrow().len() as u64;
        if aligned && inside {
            Ok(())
        } else {
            Err(BlockError::Op {
                op,
                offset,
                len: len as u64,
                detail: "unaligned or out of range".into(),
            })
        }
    }
}

impl BlockDevice for FakeDisk {
    fn bypasses_cache(&self) -> bool {
        true
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        self.check("read", offset, buf.len())?;
        let o = offset as usize;
        buf.copy_from_slice(&self.disk.borrow()[o..o + buf.len()]);
        if self.corrupt_reads {
            buf[0] ^= 0xff;
        }
        Ok(())
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), BlockError> {
        self.check("write", offset, buf.len())?;
        let o = offset as usize;
        self.disk.borrow_mut()[o..o + buf.len()].copy_from_slice(buf);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), BlockError> {
        self.flushes.set(self.flushes.get() + 1);
        Ok(())
    }
}
