//! Plugin boundary cost for i3d: linked in-process vs through `plugins/libi3d.so`.

fn main() -> anyhow::Result<()> {
    trajhost_bench::boundary::run("i3d", i3d::build)
}
