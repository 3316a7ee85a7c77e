//! Gives this compile of the crate an identity (`serve::BUILD`): `trajhost` execs the lean
//! `trajhost-serve` beside it only when both were linked against the same compile, so a server
//! left from an older build never serves an old dashboard. Cargo reruns this script whenever a
//! file of the crate changes.

fn main() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.as_nanos());
    println!(
        "cargo:rustc-env=TRAJHOST_RUNS_BUILD={}-{nanos}",
        std::env::var("CARGO_PKG_VERSION").unwrap_or_default()
    );
}
