//! Training and inference throughput on random input:
//! `cargo run --release -p slowfast --example slowfast_throughput -- [config] [batches]`.

fn main() -> Result<(), String> {
    trajhost_plugin_api::devkit::throughput_main("slowfast", slowfast::build)
}
