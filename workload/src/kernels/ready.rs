//! `ready`: the boot marker, printed before anything else.

use crate::platform::Platform;
use crate::report::Line;

/// Marks readiness (platform hook, e.g. the VM's port `0x500`) and emits
/// `{"probe":"ready","metric":"monotonic_ns",...}` with the program's own
/// monotonic timestamp.
pub fn run<P: Platform>(p: &mut P) {
    p.mark_ready();
    let now = p.now_ns() as f64;
    Line::new(p, "ready", "monotonic_ns", "ns", alloc::vec![now]).emit(p);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::fake::FakePlatform;

    #[test]
    fn marks_then_prints_own_timestamp() {
        let mut p = FakePlatform::new(10);
        p.now_ns();
        p.now_ns();
        run(&mut p);
        assert_eq!(p.ready_marks, 1);
        assert!(
            p.lines[0].starts_with(r#"{"schema":1,"probe":"ready""#),
            "{}",
            p.lines[0]
        );
        assert_eq!(p.results()[0].value, 20.0);
    }
}
