//! A platform for host tests: a clock that advances a fixed step per reading,
//! captured output, and an in-memory block device.

use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use crate::platform::{BLOCK_ALIGN, BlockDevice, BlockError, Platform};
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
