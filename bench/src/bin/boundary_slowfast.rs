//! Plugin boundary cost for slowfast: linked in-process vs through `plugins/libslowfast.so`.

fn main() -> anyhow::Result<()> {
    trajhost_bench::boundary::run("slowfast", slowfast::build)
}
