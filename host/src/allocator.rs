//! glibc allocator settings for a process that trains: called first thing by `trajhost` (and
//! by `trajhost-bench`, so the bench measures the host as shipped).
//!
//! glibc returns every large free block to the kernel and maps the next one afresh, so each
//! training step page-faults its batch and activations in again (12,289 faults and 34 ms per
//! uint8→float batch of 32 before this, none and 16 ms after; see docs/bench.md). Keeping up
//! to 32 MiB blocks on a heap that is trimmed only past 1 GiB reuses that memory instead.

/// Applies the settings; false if glibc refused one. Call before any other thread starts.
pub fn tune() -> bool {
    // SAFETY: mallopt only changes allocator parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30) == 1
            && libc::mallopt(libc::M_TOP_PAD, 64 << 20) == 1
    }
}
