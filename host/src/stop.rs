//! Ctrl-C / SIGTERM: the loop finishes its step, writes a checkpoint and exits with
//! `INTERRUPTED_EXIT_CODE`.

use std::sync::atomic::{AtomicBool, Ordering};

/// The exit status of a `train`, `sweep` or `pipeline` that stopped on a signal after
/// checkpointing: not 0, so a scheduler or a `&&` chain does not take an unfinished run for a
/// finished one, and not 1, so a script can tell "resume me" from "failed" (75 is sysexits'
/// EX_TEMPFAIL: try again later). The Slurm script requeues its task on it.
pub const INTERRUPTED_EXIT_CODE: u8 = 75;

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Installs the handler once; later calls do nothing.
pub fn install_handler() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = ctrlc::set_handler(|| REQUESTED.store(true, Ordering::SeqCst));
    });
}

pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}
