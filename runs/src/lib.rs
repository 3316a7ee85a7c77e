//! Run folders, read and shown, with no libtorch: the run-folder protocol (`rundir`), the
//! configs that describe runs (`config`), the gate's decision, `compare`'s report, `monitor`,
//! the dashboard server (`serve`) and the curves. The host re-exports every module, so they are
//! `trajhost::rundir` and so on; `trajhost-serve` (src/bin) is the dashboard in a process a
//! few MiB large.

pub use trajhost_fs as atomic;
pub mod clock;
pub mod compare;
pub mod config;
pub mod curves;
pub mod format;
pub mod gate;
pub mod monitor;
pub mod rundir;
pub mod serve;
