//! Training and inference throughput on random input:
//! `cargo run --release -p i3d --example i3d_throughput -- [config] [batches]`.

fn main() -> Result<(), String> {
    trajhost_plugin_api::devkit::throughput_main("i3d", i3d::build)
}
