//! The i8042 keyboard controller, reduced to what a microVM needs: writing
//! `0xfe` (pulse reset line) to its command port resets the VM. Linux uses
//! it with `reboot=k`.

use crate::devices::bus::{BusDevice, IoResult, VmAction};

/// Base port (data port 0x60; command/status port 0x64 at offset 4).
pub const BASE: u64 = 0x60;
/// Ports covered.
pub const LEN: u64 = 5;
const COMMAND: u64 = 4;
const CMD_RESET: u8 = 0xfe;

/// The reset-only i8042.
#[derive(Debug, Default)]
pub struct I8042;

impl BusDevice for I8042 {
    fn read(&mut self, _offset: u64, data: &mut [u8]) -> IoResult {
        // Status 0: no data, input buffer empty, so probing drivers move on.
        data.fill(0);
        IoResult::Done
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> IoResult {
        match (offset, data) {
            (COMMAND, [CMD_RESET]) => IoResult::Action(VmAction::Reset),
            _ => IoResult::Done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_fe_on_the_command_port_resets() {
        let mut d = I8042;
        assert_eq!(
            d.write(COMMAND, &[CMD_RESET]),
            IoResult::Action(VmAction::Reset)
        );
        assert_eq!(d.write(0, &[CMD_RESET]), IoResult::Done);
        assert_eq!(d.write(COMMAND, &[0xd1]), IoResult::Done);
        let mut b = [9u8];
        assert_eq!(d.read(COMMAND, &mut b), IoResult::Done);
        assert_eq!(b, [0]);
    }
}
