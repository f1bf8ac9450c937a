//! The guest kernel command line: project defaults, user additions and the
//! arguments handed to `/init`; and [`declare_virtio_mmio`], which the VM
//! builder uses to declare the devices it actually creates.

use linux_loader::cmdline::Cmdline;

use super::LinuxError;

/// Longest command line (without the terminating NUL) an x86 kernel accepts
/// when its header does not say otherwise (`COMMAND_LINE_SIZE` - 1).
pub const DEFAULT_CMDLINE_MAX: usize = 2047;

/// The early console on COM1 (see [`CmdlineBuilder::early_console`]).
pub const EARLY_CONSOLE: &str = "earlycon=uart8250,io,0x3f8";

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
    EARLY_CONSOLE,
    "reboot=k",
    "panic=1",
    "pci=off",
    "isolab.vm",
];

/// Builds a kernel command line. Starts from [`DEFAULT_PARAMS`].
#[derive(Debug, Clone)]
pub struct CmdlineBuilder {
    params: Vec<String>,
    init_args: Vec<String>,
    max_len: usize,
}

impl Default for CmdlineBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl CmdlineBuilder {
    /// The project defaults, no init arguments.
    pub fn new() -> Self {
        CmdlineBuilder {
            params: DEFAULT_PARAMS.iter().map(|s| s.to_string()).collect(),
            init_args: Vec::new(),
            max_len: DEFAULT_CMDLINE_MAX,
        }
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

    /// Drops (or restores) the early console. Its messages come before
    /// `quiet` takes effect, so a run whose console carries a program's
    /// output (an OCI bundle's) boots without it.
    pub fn early_console(mut self, on: bool) -> Self {
        self.params.retain(|p| !p.starts_with("earlycon="));
        if on {
            self.params.insert(1, EARLY_CONSOLE.into());
        }
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
        for a in &self.init_args {
            if a == "--" {
                return Err(LinuxError::CmdlineInvalid {
                    reason: "an init argument is `--`, where the kernel ends init's arguments"
                        .into(),
                });
            }
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

/// `cmdline` with a `virtio_mmio.device=SIZE@BASE:IRQ` declaration among
/// the kernel's parameters: before the `--` that starts `/init`'s arguments
/// (after it, the kernel would hand the declaration to `/init`). A line that
/// already declares a device at `base` is returned unchanged.
pub fn declare_virtio_mmio(cmdline: &str, size: u64, base: u64, irq: u32) -> String {
    let at = format!("@{base:#x}:");
    if kernel_part(cmdline)
        .split_whitespace()
        .any(|p| p.starts_with("virtio_mmio.device=") && p.contains(&at))
    {
        return cmdline.to_string();
    }
    add_kernel_param(
        cmdline,
        &format!("virtio_mmio.device={}K@{base:#x}:{irq}", size >> 10),
    )
}

/// The kernel's parameters of `cmdline` and the rest (`/init`'s, from ` -- `).
fn split_init(cmdline: &str) -> (&str, &str) {
    match cmdline.find(" -- ") {
        Some(i) => cmdline.split_at(i),
        None if cmdline.starts_with("-- ") => ("", cmdline),
        None => (cmdline, ""),
    }
}

fn kernel_part(cmdline: &str) -> &str {
    split_init(cmdline).0
}

/// `cmdline` with `decl` appended to the kernel's parameters, before the
/// `--` that starts `/init`'s arguments.
pub fn add_kernel_param(cmdline: &str, decl: &str) -> String {
    let (kernel, init) = split_init(cmdline);
    let sep = if kernel.is_empty() { "" } else { " " };
    let init = if kernel.is_empty() && !init.is_empty() {
        format!(" {init}")
    } else {
        init.to_string()
    };
    format!("{kernel}{sep}{decl}{init}")
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
    fn virtio_mmio_declarations_go_before_the_init_arguments() {
        let decl = |c: &str| declare_virtio_mmio(c, 0x1000, 0xd000_0000, 5);
        assert_eq!(
            decl("console=ttyS0 -- cpu --io-target /dev/vda"),
            "console=ttyS0 virtio_mmio.device=4K@0xd0000000:5 -- cpu --io-target /dev/vda"
        );
        assert_eq!(
            decl("console=ttyS0"),
            "console=ttyS0 virtio_mmio.device=4K@0xd0000000:5"
        );
        assert_eq!(decl("-- cpu"), "virtio_mmio.device=4K@0xd0000000:5 -- cpu");
        // Declared already (by the user): unchanged.
        let mine = "a virtio_mmio.device=8K@0xd0000000:5 -- x";
        assert_eq!(decl(mine), mine);
        // A declaration among init's arguments does not count.
        assert_eq!(
            decl("a -- virtio_mmio.device=4K@0xd0000000:5"),
            "a virtio_mmio.device=4K@0xd0000000:5 -- virtio_mmio.device=4K@0xd0000000:5"
        );
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
    fn the_early_console_can_be_dropped_and_restored() {
        let off = CmdlineBuilder::new().early_console(false).build().unwrap();
        assert!(!off.contains("earlycon"), "{off}");
        let on = CmdlineBuilder::new()
            .early_console(false)
            .early_console(true)
            .build()
            .unwrap();
        assert_eq!(on, CmdlineBuilder::new().build().unwrap());
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
        assert!(matches!(
            CmdlineBuilder::new().init_args(["x", "--", "y"]).build(),
            Err(LinuxError::CmdlineInvalid { .. })
        ));
    }
}
