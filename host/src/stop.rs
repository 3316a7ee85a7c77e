//! Ctrl-C / SIGTERM: the loop finishes its step, writes a checkpoint and exits 0.

use std::sync::atomic::{AtomicBool, Ordering};

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
