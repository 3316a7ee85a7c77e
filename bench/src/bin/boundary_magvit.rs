//! Plugin boundary cost for magvit: linked in-process vs through `plugins/libmagvit.so`.

fn main() -> anyhow::Result<()> {
    trajhost_bench::boundary::run("magvit", magvit::build)
}
