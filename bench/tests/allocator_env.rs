//! The `eager_tuned` and `compile` peers get trajhost's allocator settings through glibc's
//! environment variables (`TUNED_MALLOC` in bench/python/run_bench.py); they must be the values
//! `host/src/allocator.rs` sets with `mallopt`, or the like-for-like column is not.

use std::path::Path;

fn read(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_tuned_peers_get_the_settings_trajhost_applies_to_itself() {
    let host = read("host/src/allocator.rs");
    let bench = read("bench/python/run_bench.py");
    for (mallopt, env, value) in [
        ("mallopt(libc::M_MMAP_MAX, 0)", "MALLOC_MMAP_MAX_", 0u64),
        (
            "mallopt(libc::M_TRIM_THRESHOLD, 1 << 30)",
            "MALLOC_TRIM_THRESHOLD_",
            1 << 30,
        ),
        (
            "mallopt(libc::M_TOP_PAD, 64 << 20)",
            "MALLOC_TOP_PAD_",
            64 << 20,
        ),
    ] {
        assert!(
            host.contains(mallopt),
            "host/src/allocator.rs no longer sets `{mallopt}`: update TUNED_MALLOC"
        );
        assert!(
            bench.contains(&format!("\"{env}\": \"{value}\"")),
            "run_bench.py's TUNED_MALLOC must set {env}={value}"
        );
    }
}
