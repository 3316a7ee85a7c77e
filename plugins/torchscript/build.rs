fn main() {
    trajhost_build::link_libtorch();
}
