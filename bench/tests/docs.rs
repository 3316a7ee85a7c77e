//! docs/bench.md and the README's speed section carry exactly the blocks `bench/results.json`
//! renders to (`trajhost_bench::report`), so no documented number can drift from the measured
//! ones: after a measurement, `target/release/trajhost-bench docs` rewrites them.

use std::path::Path;

#[test]
fn the_documented_numbers_are_rendered_from_results_json() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let text =
        std::fs::read_to_string(root.join("bench/results.json")).expect("bench/results.json");
    let results: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    if let Err(e) = trajhost_bench::report::write_docs(root, &results, true) {
        panic!("{e}");
    }
}
