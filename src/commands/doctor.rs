//! `isolab doctor`.

/// Prints the capability report; exits 0 (a report is not a failure).
pub fn run(json: bool) -> anyhow::Result<i32> {
    let report = isolation::doctor::run();
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", isolation::doctor::render(&report));
    }
    Ok(0)
}
