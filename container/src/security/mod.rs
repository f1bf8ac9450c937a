//! What the workload may do once it runs: capabilities, `no_new_privs`, seccomp.

pub mod capabilities;
pub mod seccomp;

use std::io;

/// Sets `no_new_privs`: exec can no longer grant privileges (setuid bits, file caps).
pub fn set_no_new_privs() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
