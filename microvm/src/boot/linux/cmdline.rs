//! The guest kernel command line: project defaults, the virtio-mmio disk
//! declaration, user additions and the arguments handed to `/init`.

use linux_loader::cmdline::Cmdline;
use vm_memory::GuestAddress;

use super::LinuxError;

/// Longest command line (without the terminating NUL) an x86 kernel accepts
/// when its header does not say otherwise (`COMMAND_LINE_SIZE` - 1).
pub const DEFAULT_CMDLINE_MAX: usize = 2047;

/// Parameters every isolab Linux guest gets. The early console makes the
/// kernel's first messages (banner, e820 map, command line) visible even when
/// the boot stops before the real console is registered.
///
/// No `nomodules`: the project kernel has no module support, so the kernel
/// would not know the word and would pass it to `/init` as an argument.
/// `isolab.vm` is a bare word because the workload looks for exactly that
/// word in `/proc/cmdline`; dotted words never reach `/init`'s argv.
pub const DEFAULT_PARAMS: &[&str] = &[
    "console=ttyS0",
    "earlycon=uart8250,io,0x3f8",
    "reboot=k",
    "panic=1",
    "pci=off",
    "isolab.vm",
];

/// Guest physical address of the virtio-mmio window (see ARCHITECTURE.md).
pub const VIRTIO_MMIO_BASE: u64 = 0xd000_0000;
/// Size of the virtio-mmio window.
pub const VIRTIO_MMIO_SIZE: u64 = 0x1000;
/// IRQ line of the virtio-mmio device.
pub const VIRTIO_MMIO_IRQ: u32 = 5;

/// Builds a kernel command line. Starts from [`DEFAULT_PARAMS`].
#[derive(Debug, Clone)]
pub struct CmdlineBuilder {
    params: Vec<String>,
    disk: bool,
    init_args: Vec<String>,
    max_len: usize,
}

impl Default for CmdlineBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl CmdlineBuilder {
    /// The project defaults, no disk, no init arguments.
    pub fn new() -> Self {
        CmdlineBuilder {
            params: DEFAULT_PARAMS.iter().map(|s| s.to_string()).collect(),
            disk: false,
            init_args: Vec::new(),
            max_len: DEFAULT_CMDLINE_MAX,
        }
    }

    /// Declares the virtio-blk device at the project's virtio-mmio window
    /// (`virtio_mmio.device=4K@0xd0000000:5`).
    pub fn disk(mut self, present: bool) -> Self {
        self.disk = present;
        self
    }

    /// Appends kernel parameters (e.g. the user's `--cmdline`), space separated.
    pub fn params(mut self, extra: &str) -> Self {
        self.params
            .extend(extra.split_whitespace().map(str::to_string));
        self
    }

    /// Arguments passed to `/init` as its argv (after `--`). Arguments with
    /// spaces are quoted, which the kernel strips again.
    pub fn init_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.init_args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Keeps the console to warnings and worse (`quiet`). Every console byte
    /// is a VM exit, so boot-time benchmarks want this; the price is that the
    /// kernel no longer prints the timestamped lines the boot split uses.
    pub fn quiet(mut self, quiet: bool) -> Self {
        self.params.retain(|p| p != "quiet");
        if quiet {
            self.params.push("quiet".into());
        }
        self
    }

    /// Overrides the maximum length (a kernel's `cmdline_size`).
    pub fn max_len(mut self, max: usize) -> Self {
        self.max_len = max;
        self
    }

    /// The command line, validated (printable ASCII, length within the limit).
    pub fn build(&self) -> Result<String, LinuxError> {
        let invalid = |what: &str, e: linux_loader::cmdline::Error| LinuxError::CmdlineInvalid {
            reason: format!("{what:?}: {e}"),
        };
        // Validation only; the length limit is checked below so the error can
        // say by how much it was exceeded.
        let mut cmdline = Cmdline::new(VALIDATION_CAPACITY).map_err(|e| invalid("capacity", e))?;
        for p in &self.params {
            cmdline.insert_str(p).map_err(|e| invalid(p, e))?;
        }
        if self.disk {
            cmdline
                .add_virtio_mmio_device(
                    VIRTIO_MMIO_SIZE,
                    GuestAddress(VIRTIO_MMIO_BASE),
                    VIRTIO_MMIO_IRQ,
                    None,
                )
                .map_err(|e| invalid("virtio_mmio.device", e))?;
        }
        for a in &self.init_args {
            if a.contains('"') {
                return Err(LinuxError::CmdlineInvalid {
                    reason: format!("init argument {a:?} contains a double quote"),
                });
            }
            let arg = if a.is_empty() || a.contains(char::is_whitespace) {
                format!("\"{a}\"")
            } else {
                a.clone()
            };
            cmdline.insert_init_args(&arg).map_err(|e| invalid(a, e))?;
        }
        let s = cmdline
            .as_cstring()
            .map_err(|e| invalid("command line", e))?;
        let s = s.into_string().expect("validated as printable ASCII");
        check_len(&s, self.max_len)?;
        Ok(s)
    }
}

/// Generous bound for linux-loader's own check; the real limit is the kernel's.
const VALIDATION_CAPACITY: usize = 1 << 20;

/// Fails with [`LinuxError::CmdlineTooLong`] when `cmdline` exceeds `max` bytes.
pub fn check_len(cmdline: &str, max: usize) -> Result<(), LinuxError> {
    if cmdline.len() > max {
        return Err(LinuxError::CmdlineTooLong {
            len: cmdline.len(),
            max,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_have_the_console_and_no_disk() {
        let c = CmdlineBuilder::new().build().unwrap();
        assert!(c.starts_with("console=ttyS0 "));
        assert!(c.contains("reboot=k panic=1 pci=off isolab.vm"));
        // Undotted words the kernel does not know would end up in init's argv.
        assert!(!c.contains("nomodules"));
        assert!(!c.contains("virtio_mmio"));
        assert!(!c.contains(" -- "));
    }

    #[test]
    fn disk_declares_the_virtio_mmio_window() {
        let c = CmdlineBuilder::new().disk(true).build().unwrap();
        assert!(c.ends_with("virtio_mmio.device=4K@0xd0000000:5"), "{c}");
    }

    #[test]
    fn init_args_follow_the_separator_and_get_quoted() {
        let c = CmdlineBuilder::new()
            .params("loglevel=4")
            .init_args(["cpu", "sh -c true"])
            .build()
            .unwrap();
        assert!(c.ends_with("loglevel=4 -- cpu \"sh -c true\""), "{c}");
    }

    #[test]
    fn quiet_is_added_once_and_removable() {
        let c = CmdlineBuilder::new()
            .quiet(true)
            .quiet(true)
            .build()
            .unwrap();
        assert_eq!(c.matches(" quiet").count(), 1, "{c}");
        let c = CmdlineBuilder::new()
            .quiet(true)
            .quiet(false)
            .build()
            .unwrap();
        assert!(!c.contains("quiet"), "{c}");
    }

    #[test]
    fn too_long_is_a_specific_error() {
        let long = "x".repeat(3000);
        match CmdlineBuilder::new().params(&long).build() {
            Err(LinuxError::CmdlineTooLong { max, .. }) => assert_eq!(max, DEFAULT_CMDLINE_MAX),
            other => panic!("expected CmdlineTooLong, got {other:?}"),
        }
    }

    #[test]
    fn non_ascii_and_quotes_are_rejected() {
        assert!(matches!(
            CmdlineBuilder::new().params("café=1").build(),
            Err(LinuxError::CmdlineInvalid { .. })
        ));
        assert!(matches!(
            CmdlineBuilder::new().init_args(["a\"b"]).build(),
            Err(LinuxError::CmdlineInvalid { .. })
        ));
    }
}
