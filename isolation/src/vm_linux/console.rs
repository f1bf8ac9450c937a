//! Reading a Linux guest's serial console: the kernel log (printk lines with
//! timestamps), the workload's JSON result lines, and anything else a
//! program printed, plus the few kernel messages that explain how a run ended.

use std::time::Duration;

/// A guest console, taken apart.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Console {
    /// Kernel messages (`[ seconds] text` lines), verbatim.
    pub kernel_log: String,
    /// JSON object lines, in order, each ending in `\n`.
    pub results: String,
    /// Everything else (a program's own output), each line ending in `\n`.
    pub program_output: String,
    /// Kernel time at which it started `/init` (`Run … as init process`).
    pub init_started: Option<Duration>,
    /// Kernel time of the last kernel message.
    pub last_kernel_time: Option<Duration>,
    /// The message of a kernel panic, if one happened.
    pub panic: Option<String>,
    /// How init ended when the kernel reported it (`Attempted to kill init!`).
    pub init_ended: Option<InitEnd>,
    /// Every line that is not a kernel message, in order (a program's
    /// whole output, JSON lines included).
    pub non_kernel: String,
}

/// How PID 1 ended, from the kernel's `exitcode=` (a wait status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitEnd {
    /// Exited with this status.
    Exited(i32),
    /// Killed by this signal.
    Signaled(i32),
}

/// Splits the raw serial output.
pub fn split(serial: &[u8]) -> Console {
    let text = String::from_utf8_lossy(serial);
    let mut c = Console::default();
    for raw in text.split('\n') {
        let line = raw.trim_end_matches('\r');
        if let Some((ts, msg)) = printk(line) {
            c.kernel_log.push_str(line);
            c.kernel_log.push('\n');
            c.last_kernel_time = Some(ts);
            if msg.starts_with("Run ") && msg.ends_with(" as init process") {
                c.init_started.get_or_insert(ts);
            }
            if let Some(p) = msg.strip_prefix("Kernel panic - not syncing: ") {
                c.panic.get_or_insert_with(|| p.trim().to_string());
                if let Some(code) = p.split("exitcode=").nth(1) {
                    c.init_ended = parse_wait_status(code.trim());
                }
            }
        } else {
            if !line.is_empty() {
                c.non_kernel.push_str(line);
                c.non_kernel.push('\n');
            }
            let t = line.trim();
            if t.starts_with('{') && t.ends_with('}') {
                c.results.push_str(t);
                c.results.push('\n');
            } else if !line.is_empty() {
                c.program_output.push_str(line);
                c.program_output.push('\n');
            }
        }
    }
    c
}

/// `[    1.234567] text` -> (1.234567 s, "text").
fn printk(line: &str) -> Option<(Duration, &str)> {
    let rest = line.strip_prefix('[')?;
    let (ts, msg) = rest.split_once(']')?;
    let (secs, micros) = ts.trim().split_once('.')?;
    let secs: u64 = secs.parse().ok()?;
    let micros: u32 = micros.parse().ok()?;
    if micros >= 1_000_000 {
        return None;
    }
    Some((
        Duration::new(secs, micros * 1000),
        msg.strip_prefix(' ').unwrap_or(msg),
    ))
}

/// `0x00000100` (a wait status) -> how the process ended.
fn parse_wait_status(hex: &str) -> Option<InitEnd> {
    let digits = hex.trim_start_matches("0x");
    let end = digits
        .find(|c: char| !c.is_ascii_hexdigit())
        .unwrap_or(digits.len());
    let status = i32::from_str_radix(&digits[..end], 16).ok()?;
    Some(if status & 0x7f == 0 {
        InitEnd::Exited((status >> 8) & 0xff)
    } else {
        InitEnd::Signaled(status & 0x7f)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOOT: &str = "\
[    0.000000] Linux version 6.1.192 (isolab@isolab) #1 SMP\r
[    0.000000] Command line: console=ttyS0 isolab.vm -- cpu\r
[    0.081234] Run /init as init process\r
{\"schema\":1,\"probe\":\"ready\"}\r
hello from a program\r
{\"schema\":1,\"probe\":\"cpu\"}\r
[    0.120000] reboot: Restarting system\r
";

    #[test]
    fn kernel_log_results_and_program_output_are_separated() {
        let c = split(BOOT.as_bytes());
        assert_eq!(c.kernel_log.lines().count(), 4);
        assert!(c.kernel_log.starts_with("[    0.000000] Linux version"));
        assert_eq!(
            c.results,
            "{\"schema\":1,\"probe\":\"ready\"}\n{\"schema\":1,\"probe\":\"cpu\"}\n"
        );
        assert_eq!(c.program_output, "hello from a program\n");
        assert_eq!(
            c.non_kernel,
            "{\"schema\":1,\"probe\":\"ready\"}\nhello from a program\n{\"schema\":1,\"probe\":\"cpu\"}\n"
        );
        assert_eq!(c.init_started, Some(Duration::from_micros(81_234)));
        assert_eq!(c.last_kernel_time, Some(Duration::from_millis(120)));
        assert_eq!(c.panic, None);
        assert_eq!(c.init_ended, None);
    }

    #[test]
    fn init_exit_status_comes_from_the_panic_message() {
        let c = split(
            b"[    1.500000] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000300\n",
        );
        assert_eq!(c.init_ended, Some(InitEnd::Exited(3)));
        assert!(c.panic.unwrap().starts_with("Attempted to kill init!"));
        let c = split(
            b"[    1.5] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000009\n",
        );
        assert_eq!(c.init_ended, Some(InitEnd::Signaled(9)));
    }

    #[test]
    fn other_panics_are_reported_without_an_exit_status() {
        let c = split(b"[    2.000000] Kernel panic - not syncing: No working init found.  Try passing init= option to kernel.\n");
        assert!(c.panic.unwrap().starts_with("No working init found."));
        assert_eq!(c.init_ended, None);
    }

    #[test]
    fn bracketed_text_that_is_not_a_timestamp_is_program_output() {
        let c = split(b"[not a timestamp] x\n[ 1.2.3] y\n");
        assert_eq!(c.kernel_log, "");
        assert_eq!(c.program_output.lines().count(), 2);
    }
}
