fn main() {
    // For this crate's own tests, which run libtorch.
    trajhost_build::link_libtorch();
    // Baked into the fingerprint that host and plugin compare before anything else.
    let version = trajhost_build::libtorch_version();
    // The `+cu130`/`+cpu` build tag is left out: both builds of one release share a C++ ABI.
    let release = version.split('+').next().unwrap_or(&version).to_string();
    println!("cargo:rustc-env=TRAJHOST_LIBTORCH_VERSION={version}");
    println!("cargo:rustc-env=TRAJHOST_LIBTORCH_RELEASE={release}");
}
