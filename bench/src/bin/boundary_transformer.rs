//! Plugin boundary cost for transformer: linked in-process vs through `plugins/libtransformer.so`.

fn main() -> anyhow::Result<()> {
    trajhost_bench::boundary::run("transformer", transformer::build)
}
