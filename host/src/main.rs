fn main() -> std::process::ExitCode {
    trajhost::cli::main()
}
