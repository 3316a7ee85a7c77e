//! The cached torch venv's python, shared by the host's and the bench's tests that check the
//! PyTorch side (`#[path]`-included by `bench/tests/parity.rs`).

use std::path::PathBuf;

/// Where `scripts/setup-torch` puts the venv's python; panics (failing the test) if it is not
/// there.
pub fn venv_python() -> PathBuf {
    let cache = std::env::var_os("TRAJHOST_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("trajhost")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/trajhost")))
        .expect("none of TRAJHOST_CACHE, XDG_CACHE_HOME, HOME is set: cannot find the torch venv");
    let python = cache.join("torch-2.13.0-venv/bin/python");
    assert!(
        python.is_file(),
        "no torch venv at {}: run scripts/setup-torch (scripts/test does) — this test needs the PyTorch side",
        python.display()
    );
    python
}
