//! glibc allocator settings for a process that trains: called first thing by `trajhost` (and
//! by `trajhost-bench`, so the bench measures the host as shipped).
//!
//! glibc serves every block above its mmap threshold (at most 32 MiB) with a fresh mapping and
//! unmaps it when freed, so each training step page-faults its float batch (50 MB at 32 videos)
//! and its large activations in again, zeroed by the kernel — tens of thousands of minor faults
//! per step. Serving every block from a heap that is trimmed only past 1 GiB reuses last step's
//! memory instead: no faults, a faster step, a slightly higher peak RSS (measured in
//! docs/bench.md).
//! Threads other than the main one still map blocks too large for their arena (glibc does so
//! regardless of `M_MMAP_MAX`), so nothing fails for want of a mapping.

/// Applies the settings; false if glibc refused one. Call before any other thread starts.
pub fn tune() -> bool {
    // SAFETY: mallopt only changes allocator parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30) == 1
            && libc::mallopt(libc::M_TOP_PAD, 64 << 20) == 1
    }
}

#[cfg(test)]
mod tests {
    fn thread_minor_faults() -> i64 {
        // SAFETY: getrusage writes into the zeroed struct we pass.
        unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            libc::getrusage(libc::RUSAGE_THREAD, &mut usage);
            usage.ru_minflt
        }
    }

    #[test]
    fn a_large_block_freed_and_taken_again_is_not_faulted_in_afresh() {
        assert!(super::tune(), "glibc refused a setting");
        // 40 MB: above glibc's largest mmap threshold, within one thread arena's heap.
        let touch = || {
            let block = vec![1u8; 40 << 20];
            std::hint::black_box(&block);
        };
        touch();
        let before = thread_minor_faults();
        touch();
        let faults = thread_minor_faults() - before;
        assert!(
            faults < 100,
            "{faults} minor faults for a reused 40 MB block"
        );
    }
}
