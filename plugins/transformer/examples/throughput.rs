//! Training and inference throughput on random input:
//! `cargo run --release -p transformer --example transformer_throughput -- [config] [batches]`.

fn main() -> Result<(), String> {
    trajhost_plugin_api::devkit::throughput_main("transformer", transformer::build)
}
