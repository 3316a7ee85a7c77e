fn main() -> std::process::ExitCode {
    tune_allocator();
    trajhost::cli::main()
}

/// glibc returns every large free block to the kernel and maps the next one afresh, so each
/// training step page-faults its batch and activations in again (12,289 faults and 34 ms per
/// uint8→float batch of 32 before this, none and 16 ms after; see docs/bench.md). Keeping up
/// to 32 MiB blocks on a heap that is trimmed only past 1 GiB reuses that memory instead.
fn tune_allocator() {
    // SAFETY: mallopt only changes allocator parameters; no other thread exists yet.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}
