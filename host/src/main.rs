fn main() -> std::process::ExitCode {
    trajhost::allocator::tune();
    trajhost::cli::main()
}
