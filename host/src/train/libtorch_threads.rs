//! Host work between training steps (rendering videos, converting a batch), run on libtorch's
//! own OpenMP threads.
//!
//! After every parallel op, libgomp's worker threads keep spinning for milliseconds before they
//! sleep, waiting for the next op. Work handed to another pool between steps (rayon's) finds
//! one core taken by a spinner and runs at about one core's speed (docs/bench.md has the
//! timings). So the work goes where the spinners are: `GOMP_parallel`, found at
//! run time in the libgomp that libtorch loaded, runs it on a team of libtorch's thread count;
//! called from the thread that runs the ops (the trainer's), it is the same team of threads. A
//! libtorch without libgomp (no such symbol) gets rayon's pool instead.

use std::any::Any;
use std::sync::{Mutex, OnceLock};

/// `GOMP_parallel(fn, data, num_threads, flags)`: runs `fn(data)` once on every thread of a
/// team of `num_threads`.
type GompParallel = unsafe extern "C" fn(
    extern "C" fn(*mut libc::c_void),
    *mut libc::c_void,
    libc::c_uint,
    libc::c_uint,
);

fn gomp_parallel() -> Option<GompParallel> {
    static FOUND: OnceLock<Option<GompParallel>> = OnceLock::new();
    *FOUND.get_or_init(|| {
        // SAFETY: a lookup by a NUL-terminated name in the already loaded libraries.
        let symbol = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"GOMP_parallel".as_ptr()) };
        // SAFETY: libgomp's GOMP_parallel has this signature (its public ABI since GCC 4.9).
        (!symbol.is_null())
            .then(|| unsafe { std::mem::transmute::<*mut libc::c_void, GompParallel>(symbol) })
    })
}

/// Calls `f` on every item, spread over libtorch's threads (each takes the next unclaimed
/// item); returns when all are done. A panic in `f` is raised again here.
pub fn for_each<T: Send>(items: Vec<T>, f: impl Fn(T) + Sync) {
    let queue = Mutex::new(items.into_iter());
    let next = || queue.lock().unwrap_or_else(|e| e.into_inner()).next();
    let drain = || {
        while let Some(item) = next() {
            f(item);
        }
    };
    on_every_thread(&drain);
}

/// Runs `work` once on each thread of libtorch's team (or rayon's pool).
fn on_every_thread(work: &(dyn Fn() + Sync)) {
    let Some(parallel) = gomp_parallel() else {
        rayon::broadcast(|_| work());
        return;
    };
    struct Call<'a> {
        work: &'a (dyn Fn() + Sync),
        panic: Mutex<Option<Box<dyn Any + Send>>>,
    }
    // A panic must not unwind into C: it is kept and raised again on this thread.
    extern "C" fn run(data: *mut libc::c_void) {
        // SAFETY: `data` is the `Call` below, alive until GOMP_parallel returns.
        let call = unsafe { &*(data as *const Call) };
        if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(call.work)) {
            *call.panic.lock().unwrap_or_else(|e| e.into_inner()) = Some(panic);
        }
    }
    let call = Call {
        work,
        panic: Mutex::new(None),
    };
    // libtorch's count, asked for explicitly: the OpenMP default of a thread that has not run a
    // libtorch op yet would be every CPU. (Asking also initialises libtorch's pool.)
    let threads = tch::get_num_threads().max(1) as libc::c_uint;
    // SAFETY: `run` only reads `call` through a shared reference; GOMP_parallel returns after
    // every thread has finished with it.
    unsafe { parallel(run, &call as *const Call as *mut libc::c_void, threads, 0) };
    if let Some(panic) = call.panic.into_inner().unwrap_or_else(|e| e.into_inner()) {
        std::panic::resume_unwind(panic);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_item_is_handled_once_on_as_many_threads_as_libtorch_uses() {
        assert!(gomp_parallel().is_some(), "libtorch's libgomp is loaded");
        let seen: Vec<AtomicUsize> = (0..100).map(|_| AtomicUsize::new(0)).collect();
        let threads = Mutex::new(std::collections::HashSet::new());
        for_each((0..100).collect(), |i: usize| {
            seen[i].fetch_add(1, Ordering::Relaxed);
            threads.lock().unwrap().insert(std::thread::current().id());
            std::thread::sleep(std::time::Duration::from_micros(200));
        });
        assert!(seen.iter().all(|n| n.load(Ordering::Relaxed) == 1));
        let team = threads.into_inner().unwrap().len();
        assert_eq!(
            team,
            tch::get_num_threads() as usize,
            "every team thread worked"
        );
    }

    #[test]
    fn a_panic_reaches_the_caller() {
        let caught = std::panic::catch_unwind(|| {
            for_each(vec![1, 2, 3], |i: i32| {
                if i == 2 {
                    std::panic::panic_any("item two");
                }
            });
        });
        let payload = caught.expect_err("the panic reaches the caller");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"item two"));
        // The team still works afterwards.
        let sum = AtomicUsize::new(0);
        for_each(vec![1, 2, 3], |i: usize| {
            sum.fetch_add(i, Ordering::Relaxed);
        });
        assert_eq!(sum.into_inner(), 6);
    }
}
