//! Fuzzes the OCI `config.json` path: the input is the file's bytes, taken
//! through the same steps as `container::oci::load_bundle` (JSON, the
//! oci-spec schema check, the mapping onto a `ContainerSpec`), and a config
//! that maps is turned into a root filesystem plan. Any panic is a bug; so
//! is a mapped spec that lost the default protections the config did not
//! ask to remove.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run oci_config -- -max_total_time=30` (from `container/`).

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if serde_json::from_value::<oci_spec::runtime::Spec>(value.clone()).is_err() {
        return;
    }
    let bundle = Path::new("/nonexistent-isolab-bundle");
    let Ok(spec) = container::oci::from_value(bundle, &value) else {
        return;
    };
    // A config never turns the sync-and-drop machinery off: these are not OCI fields.
    assert!(spec.forward_signals);
    let has_seccomp = value
        .pointer("/linux/seccomp")
        .is_some_and(|s| !s.is_null());
    if !has_seccomp {
        assert!(
            spec.seccomp,
            "a config without linux.seccomp lost the default filter"
        );
    }
    let _ = container::rootfs::plan(&spec, Path::new("/nonexistent-isolab-staging"));
});
