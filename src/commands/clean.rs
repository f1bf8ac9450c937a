//! `isolab clean`.

/// Removes leftovers of dead runs (and OCI containers in the default runtime
/// root that their owner abandoned); exits 1 if something could not be removed.
pub fn run() -> anyhow::Result<i32> {
    let mut log = runtime::state::clean_default_root();
    let found = isolation::clean::scan();
    if !found.is_empty() {
        log.extend(isolation::clean::clean(&found));
    }
    if log.is_empty() {
        println!("nothing to clean");
        return Ok(0);
    }
    for line in &log {
        println!("{line}");
    }
    Ok(if log.iter().any(|l| l.starts_with("could not")) {
        1
    } else {
        0
    })
}
