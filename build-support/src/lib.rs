//! Shared by the `build.rs` of the host and of every backbone plugin, so that all of them
//! link the same libtorch the same way:
//!
//! * an rpath to libtorch's `lib/` folder, so binaries run without `LD_LIBRARY_PATH`;
//! * `-Wl,--no-as-needed -ltorch`, because otherwise the linker drops `libtorch_cuda`
//!   (nothing references it directly) and a CUDA machine silently trains on the CPU.
//!
//! libtorch is found through `LIBTORCH`, which `.cargo/config.toml` points at the
//! `.libtorch` link that `scripts/setup-torch` creates.

use std::path::PathBuf;

/// The libtorch folder (holding `include/` and `lib/`), resolved through links.
pub fn libtorch_dir() -> PathBuf {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let dir = std::env::var_os("LIBTORCH").map(PathBuf::from).unwrap_or_else(|| {
        panic!("LIBTORCH is not set: run scripts/setup-torch (it installs torch==2.13.0 and links .libtorch)")
    });
    dir.canonicalize().unwrap_or_else(|e| {
        panic!(
            "LIBTORCH={} cannot be resolved ({e}): run scripts/setup-torch",
            dir.display()
        )
    })
}

/// The libtorch version the build links against, e.g. `2.13.0+cu130`, read from the
/// files that PyPI wheels (`version.py`) and libtorch archives (`build-version`) ship.
pub fn libtorch_version() -> String {
    let dir = libtorch_dir();
    if let Ok(text) = std::fs::read_to_string(dir.join("build-version")) {
        return text.trim().to_string();
    }
    if let Ok(text) = std::fs::read_to_string(dir.join("version.py")) {
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("__version__ = ") {
                return rest.trim().trim_matches('\'').trim_matches('"').to_string();
            }
        }
    }
    "unknown".to_string()
}

/// Emits the link arguments for the crate whose build script calls this.
pub fn link_libtorch() {
    let lib = libtorch_dir().join("lib");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    println!("cargo:rustc-link-search=native={}", lib.display());
    println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
    println!("cargo:rustc-link-arg=-ltorch");
}
