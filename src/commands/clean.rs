//! `isolab clean`.

/// Removes leftovers of dead runs; exits 1 if something could not be removed.
pub fn run() -> anyhow::Result<i32> {
    let found = isolation::clean::scan();
    if found.is_empty() {
        println!("nothing to clean");
        return Ok(0);
    }
    let log = isolation::clean::clean(&found);
    for line in &log {
        println!("{line}");
    }
    Ok(if log.iter().any(|l| l.starts_with("could not")) {
        1
    } else {
        0
    })
}
