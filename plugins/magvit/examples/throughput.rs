//! Training and inference throughput on random input:
//! `cargo run --release -p magvit --example magvit_throughput -- [config] [batches]`.

fn main() -> Result<(), String> {
    trajhost_plugin_api::devkit::throughput_main("magvit", magvit::build)
}
