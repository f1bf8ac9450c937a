//! Colour for isolab's own messages on a terminal, none under `NO_COLOR` (https://no-color.org) or
//! when the stream is a pipe or a file.

use std::io::IsTerminal;

/// Whether to colour what goes to standard error.
fn enabled() -> bool {
    let tty = std::io::stderr().is_terminal();
    decide(std::env::var_os("NO_COLOR").as_deref(), tty)
}

/// `NO_COLOR` set to anything non-empty turns colour off; otherwise a
/// terminal gets colour.
fn decide(no_color: Option<&std::ffi::OsStr>, tty: bool) -> bool {
    tty && no_color.is_none_or(|v| v.is_empty())
}

/// `isolab: error:` in bold red where colour is on.
pub fn error_prefix() -> &'static str {
    if enabled() {
        "\x1b[1;31misolab: error:\x1b[0m"
    } else {
        "isolab: error:"
    }
}

/// `isolab: note:` in cyan where colour is on.
pub fn note_prefix() -> &'static str {
    if enabled() {
        "\x1b[36misolab: note:\x1b[0m"
    } else {
        "isolab: note:"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn no_color_and_pipes_turn_colour_off() {
        assert!(decide(None, true));
        assert!(!decide(None, false));
        assert!(!decide(Some(OsStr::new("1")), true));
        // An empty NO_COLOR does not count, as the convention says.
        assert!(decide(Some(OsStr::new("")), true));
    }
}
