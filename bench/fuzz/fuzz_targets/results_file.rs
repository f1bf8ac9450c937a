//! Fuzzes `bench::results::load`, the reader of results files (the input is
//! the file). A file that loads must survive a save/load round trip
//! unchanged, and a file that does not must give an error, never a panic.
//!
//! The input goes into an anonymous temp file (`O_TMPFILE`) read back through
//! `/proc/self/fd/N`, so nothing is left in the temp directory however the
//! fuzzer exits.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run results_file -- -max_total_time=30` (from `bench/`).

#![no_main]

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;

struct Scratch {
    file: File,
    path: PathBuf,
}

static SCRATCH: Mutex<Option<Scratch>> = Mutex::new(None);

fn load(data: &[u8]) -> Result<bench::results::Results, bench::results::ResultsError> {
    let mut guard = SCRATCH.lock().unwrap();
    let s = guard.get_or_insert_with(|| {
        let file = tempfile::tempfile().expect("anonymous temp file");
        let path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
        Scratch { file, path }
    });
    s.file.set_len(0).unwrap();
    s.file.seek(SeekFrom::Start(0)).unwrap();
    s.file.write_all(data).unwrap();
    bench::results::load(&s.path)
}

fuzz_target!(|data: &[u8]| {
    let Ok(results) = load(data) else {
        return;
    };
    let json = serde_json::to_string_pretty(&results).expect("results always serialize");
    let again = load(json.as_bytes()).expect("a loaded results file reloads after saving");
    // NaN never survives JSON, so compare the serialized forms.
    assert_eq!(
        serde_json::to_string(&again).unwrap(),
        serde_json::to_string(&results).unwrap(),
        "save/load round trip changed the results"
    );
});
