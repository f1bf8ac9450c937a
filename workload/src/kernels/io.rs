//! `io`: sequential write and read in 1 MiB blocks, random 4 KiB reads, and
//! `fsync` latency, against the platform's block target.
//!
//! Every 4 KiB page written carries its own offset as a stamp, and every read
//! checks it, so a broken driver or a lost write fails the probe instead of
//! producing a fast, wrong number.

use alloc::vec;
use alloc::vec::Vec;

use super::{XorShift, elapsed_ns, per_second};
use crate::error::WorkloadError;
use crate::platform::{BLOCK_ALIGN, BlockDevice, BlockError, Platform};
use crate::report::Line;
use crate::stats::percentile;

/// Bytes per sequential I/O.
pub const SEQ_BLOCK: usize = 1 << 20;
/// Bytes per random read and per `fsync`-timed write.
pub const PAGE: usize = BLOCK_ALIGN;
const STAMP: u64 = 0x1501_ab10_5a5a_0000;

/// Parameters of the `io` kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoParams<'a> {
    /// Bytes written and read sequentially (a multiple of [`SEQ_BLOCK`]).
    pub size: u64,
    /// Target passed to [`Platform::open_block`].
    pub target: Option<&'a str>,
    /// Random reads per sample.
    pub rand_ops: u32,
    /// `fsync` measurements per repetition.
    pub fsync_ops: u32,
}

/// A heap buffer aligned to [`BLOCK_ALIGN`], as `O_DIRECT` and DMA need.
struct AlignedBuf {
    pages: Vec<Page>,
}

#[repr(C, align(4096))]
struct Page([u8; PAGE]);

/// One zeroed page aligned to [`BLOCK_ALIGN`], for platform code that needs a
/// single aligned buffer (e.g. probing whether `O_DIRECT` works).
pub struct AlignedPage(Page);

impl AlignedPage {
    /// A zeroed page.
    pub fn new() -> AlignedPage {
        AlignedPage(Page([0; PAGE]))
    }

    /// The page's bytes.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.0.0
    }
}

impl Default for AlignedPage {
    fn default() -> Self {
        Self::new()
    }
}

impl AlignedBuf {
    fn new(bytes: usize) -> Result<AlignedBuf, WorkloadError> {
        let n = bytes.div_ceil(PAGE);
        let mut pages: Vec<Page> = Vec::new();
        pages
            .try_reserve_exact(n)
            .map_err(|_| WorkloadError::OutOfMemory {
                probe: "io",
                what: "the I/O buffer",
                bytes: bytes as u64,
            })?;
        pages.resize_with(n, || Page([0; PAGE]));
        Ok(AlignedBuf { pages })
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: `Page` is `repr(C)` around `[u8; PAGE]` with size == align ==
        // PAGE, so the vector's elements are `len * PAGE` contiguous, initialised
        // bytes; the borrow of `self` keeps them alive and unaliased by writers.
        unsafe {
            core::slice::from_raw_parts(self.pages.as_ptr().cast::<u8>(), self.pages.len() * PAGE)
        }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, and the `&mut self` borrow makes this the only access.
        unsafe {
            core::slice::from_raw_parts_mut(
                self.pages.as_mut_ptr().cast::<u8>(),
                self.pages.len() * PAGE,
            )
        }
    }
}

/// Fills `buf` with deterministic bytes (so the device cannot compress zeros).
fn fill(buf: &mut [u8]) {
    let mut rng = XorShift::new(STAMP);
    for chunk in buf.chunks_mut(8) {
        let w = rng.next_u64().to_le_bytes();
        chunk.copy_from_slice(&w[..chunk.len()]);
    }
}

/// Stamps every page of `buf` (which will land at device offset `offset`)
/// with that page's own offset.
fn stamp(buf: &mut [u8], offset: u64) {
    for (i, page) in buf.chunks_mut(PAGE).enumerate() {
        let at = offset + (i * PAGE) as u64;
        page[..8].copy_from_slice(&(at ^ STAMP).to_le_bytes());
    }
}

/// Checks the stamps written by [`stamp`].
fn verify(buf: &[u8], offset: u64) -> Result<(), BlockError> {
    for (i, page) in buf.chunks(PAGE).enumerate() {
        let at = offset + (i * PAGE) as u64;
        if page[..8] != (at ^ STAMP).to_le_bytes() {
            return Err(BlockError::Mismatch { offset: at });
        }
    }
    Ok(())
}

struct Samples {
    write: Vec<f64>,
    read: Vec<f64>,
    rand: Vec<f64>,
    fsync_us: Vec<f64>,
}

fn one_rep<P: Platform>(
    p: &P,
    dev: &mut P::Block,
    buf: &mut AlignedBuf,
    params: &IoParams<'_>,
    out: &mut Samples,
) -> Result<(), WorkloadError> {
    let blocks = params.size / SEQ_BLOCK as u64;
    let mb = params.size as f64 / 1e6;

    let t0 = p.now_ns();
    for b in 0..blocks {
        let off = b * SEQ_BLOCK as u64;
        stamp(buf.bytes_mut(), off);
        dev.write_at(off, buf.bytes())?;
    }
    dev.flush()?;
    out.write.push(per_second(mb, elapsed_ns(t0, p.now_ns())));

    let t0 = p.now_ns();
    for b in 0..blocks {
        let off = b * SEQ_BLOCK as u64;
        dev.read_at(off, buf.bytes_mut())?;
        verify(buf.bytes(), off)?;
    }
    out.read.push(per_second(mb, elapsed_ns(t0, p.now_ns())));

    let pages = params.size / PAGE as u64;
    let mut rng = XorShift::new(STAMP ^ out.rand.len() as u64);
    let t0 = p.now_ns();
    for _ in 0..params.rand_ops {
        let off = (rng.next_u64() % pages) * PAGE as u64;
        let page = &mut buf.bytes_mut()[..PAGE];
        dev.read_at(off, page)?;
        verify(page, off)?;
    }
    out.rand.push(per_second(
        f64::from(params.rand_ops),
        elapsed_ns(t0, p.now_ns()),
    ));

    for i in 0..u64::from(params.fsync_ops) {
        let off = (i % pages) * PAGE as u64;
        let page = &mut buf.bytes_mut()[..PAGE];
        stamp(page, off);
        dev.write_at(off, page)?;
        let t0 = p.now_ns();
        dev.flush()?;
        out.fsync_us.push(elapsed_ns(t0, p.now_ns()) as f64 / 1e3);
    }
    Ok(())
}

/// Runs the probe: emits `seq_write_mb_per_s`, `seq_read_mb_per_s`,
/// `rand_read_iops`, `fsync_p50_us` and `fsync_p99_us`, all with `kind`
/// `direct` (page cache bypassed) or `buffered`.
pub fn run<P: Platform>(p: &mut P, params: IoParams<'_>, reps: u32) -> Result<(), WorkloadError> {
    let mut buf = AlignedBuf::new(SEQ_BLOCK)?;
    fill(buf.bytes_mut());
    let mut dev = p.open_block(params.target, params.size)?;
    let mut s = Samples {
        write: vec![],
        read: vec![],
        rand: vec![],
        fsync_us: vec![],
    };
    for _ in 0..reps {
        one_rep(p, &mut dev, &mut buf, &params, &mut s)?;
    }
    let direct = dev.bypasses_cache();
    // Release the target (and any temporary file) before printing.
    drop(dev);
    let kind = if direct { "direct" } else { "buffered" };
    let (p50, p99) = (percentile(&s.fsync_us, 50.0), percentile(&s.fsync_us, 99.0));
    let lines = [
        ("seq_write_mb_per_s", "MB/s", s.write, None),
        ("seq_read_mb_per_s", "MB/s", s.read, None),
        ("rand_read_iops", "IOPS", s.rand, None),
        ("fsync_p50_us", "us", s.fsync_us.clone(), Some(p50)),
        ("fsync_p99_us", "us", s.fsync_us, Some(p99)),
    ];
    for (metric, unit, samples, value) in lines {
        let mut line = Line::new(p, "io", metric, unit, samples)
            .kind(kind)
            .extra("cache_bypassed", direct)
            .extra("bytes", params.size);
        if let Some(v) = value {
            line = line.value(v);
        }
        line.emit(p);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::fake::FakePlatform;
    use alloc::string::ToString;

    fn params(target: Option<&str>) -> IoParams<'_> {
        IoParams {
            size: 2 << 20,
            target,
            rand_ops: 8,
            fsync_ops: 4,
        }
    }

    #[test]
    fn writes_stamped_data_and_reports_every_metric() {
        let mut p = FakePlatform::new(1000);
        run(&mut p, params(None), 2).unwrap();
        let r = p.results();
        let metrics: Vec<&str> = r.iter().map(|l| l.metric.as_str()).collect();
        assert_eq!(
            metrics,
            [
                "seq_write_mb_per_s",
                "seq_read_mb_per_s",
                "rand_read_iops",
                "fsync_p50_us",
                "fsync_p99_us"
            ]
        );
        assert!(r.iter().all(|l| l.kind.as_deref() == Some("direct")));
        assert_eq!(r[3].samples.len(), 8);
        // The write phase spans one 1 us step of the fake clock: 2.097152 MB in 1 us.
        assert!((r[0].value - 2.097152e6).abs() < 1e-6, "{}", r[0].value);
        // 1 seq flush + 4 fsyncs per rep.
        assert_eq!(p.flushes.get(), 10);
        let disk = p.disk.borrow();
        assert_eq!(disk.len(), 2 << 20);
        verify(&disk[..], 0).unwrap();
    }

    #[test]
    fn corrupted_reads_fail_the_probe() {
        let mut p = FakePlatform::new(1);
        p.corrupt_reads = true;
        let e = run(&mut p, params(None), 1).unwrap_err();
        assert_eq!(e, WorkloadError::Block(BlockError::Mismatch { offset: 0 }));
        assert!(p.lines.is_empty());
    }

    #[test]
    fn unopenable_target_is_reported_by_name() {
        let mut p = FakePlatform::new(1);
        let e = run(&mut p, params(Some("/unwritable")), 1).unwrap_err();
        assert!(e.to_string().contains("/unwritable"), "{e}");
    }

    #[test]
    fn aligned_buffer_is_aligned() {
        let b = AlignedBuf::new(3 * PAGE + 1).unwrap();
        assert_eq!(b.bytes().as_ptr() as usize % BLOCK_ALIGN, 0);
        assert_eq!(b.bytes().len(), 4 * PAGE);
    }
}
