//! An epoch's training videos, rendered ahead in the machine's idle time.
//!
//! A thread at `SCHED_IDLE` priority renders the next batches' videos, one video at a time,
//! while the model trains: it runs only when a core would otherwise idle (libtorch leaves
//! ~15 % of two cores idle in a training step), so it never delays a step the way a thread of
//! normal priority does (that cost 4–11 % of each step on two cores: its work landed inside
//! libtorch's parallel regions, where one late thread holds back the other). When the trainer
//! asks for a batch, it renders whatever the idle thread has not reached, on every core.
//! Which video goes where depends only on the plan, never on who rendered it.

use super::source::Rendered;
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use trajhost_dataset::DataConfig;

/// Batches rendered ahead of the trainer at most.
const AHEAD: usize = 2;

/// One sample: its video's bytes and its labels.
pub type Sample = (Vec<u8>, Rendered);

/// The batches of a plan, rendered ahead; [`RenderAhead::take`] them in order.
pub struct RenderAhead {
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
}

struct Shared {
    config: DataConfig,
    predict_future: usize,
    batches: Vec<Pending>,
    /// Batches handed to the trainer.
    taken: AtomicUsize,
    stop: AtomicBool,
}

/// One batch: its samples' indices, the next one nobody has claimed, and those rendered.
struct Pending {
    indices: Vec<u64>,
    next: AtomicUsize,
    done: Mutex<Vec<Option<Sample>>>,
    ready: Condvar,
}

impl Pending {
    /// Claims and renders the next unclaimed sample; false when none is left.
    fn render_one(&self, config: &DataConfig, predict_future: usize) -> bool {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        if i >= self.indices.len() {
            return false;
        }
        self.render(i, config, predict_future);
        true
    }

    /// Renders sample `i` and stores it.
    fn render(&self, i: usize, config: &DataConfig, predict_future: usize) {
        let mut video = vec![0u8; config.video_bytes()];
        let labels = Rendered::labels_of(config, self.indices[i], predict_future, &mut video);
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        done[i] = Some((video, labels));
        self.ready.notify_all();
    }
}

impl RenderAhead {
    /// Starts rendering `plan` (each batch's sample indices) in idle time.
    pub fn start(config: DataConfig, predict_future: usize, plan: Vec<Vec<u64>>) -> RenderAhead {
        let batches = plan
            .into_iter()
            .map(|indices| Pending {
                done: Mutex::new((0..indices.len()).map(|_| None).collect()),
                indices,
                next: AtomicUsize::new(0),
                ready: Condvar::new(),
            })
            .collect();
        let shared = Arc::new(Shared {
            config,
            predict_future,
            batches,
            taken: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let worker = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("render-ahead".into())
                .spawn(move || shared.render_in_idle_time())
                .ok()
        };
        RenderAhead { shared, worker }
    }

    /// Batch `k` (batches are taken in order, each once): its samples in plan order.
    pub fn take(&self, k: usize) -> Vec<Sample> {
        let s = &self.shared;
        let batch = &s.batches[k];
        // What the idle thread has not claimed, rendered now on every core.
        (0..rayon::current_num_threads())
            .into_par_iter()
            .for_each(|_| while batch.render_one(&s.config, s.predict_future) {});
        // And what it is still drawing: waiting idles this core, so it gets to finish — unless
        // it has died (a panic), when the trainer draws the rest itself.
        let mut done = batch.done.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(missing) = done.iter().position(Option::is_none) {
            if self.worker.as_ref().is_none_or(|w| w.is_finished()) {
                drop(done);
                batch.render(missing, &s.config, s.predict_future);
                done = batch.done.lock().unwrap_or_else(|e| e.into_inner());
            } else {
                let wait = Duration::from_millis(50);
                done = batch
                    .ready
                    .wait_timeout(done, wait)
                    .map_or_else(|e| e.into_inner().0, |r| r.0);
            }
        }
        s.taken.store(k + 1, Ordering::Relaxed);
        done.iter_mut()
            .map(|d| d.take().expect("rendered"))
            .collect()
    }
}

impl Shared {
    fn render_in_idle_time(&self) {
        // SAFETY: sets this thread's own scheduling policy; `param` outlives the call.
        unsafe {
            let param = libc::sched_param { sched_priority: 0 };
            libc::sched_setscheduler(0, libc::SCHED_IDLE, &param);
        }
        let mut k = 0;
        while !self.stop.load(Ordering::Relaxed) && k < self.batches.len() {
            let taken = self.taken.load(Ordering::Relaxed);
            k = k.max(taken);
            if k >= taken + AHEAD {
                std::thread::sleep(Duration::from_millis(1));
            } else if k < self.batches.len()
                && !self.batches[k].render_one(&self.config, self.predict_future)
            {
                k += 1;
            }
        }
    }
}

impl Drop for RenderAhead {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trajhost_dataset::sample::generate_sample;

    #[test]
    fn batches_hold_the_planned_videos_in_order_whoever_rendered_them() {
        let config = DataConfig::default_config();
        let plan: Vec<Vec<u64>> = vec![vec![5, 3, 9], vec![1, 7], vec![100, 2, 4]];
        let ahead = RenderAhead::start(config.clone(), 5, plan.clone());
        for (k, indices) in plan.iter().enumerate() {
            if k == 1 {
                // Give the idle thread time to draw the last batch ahead of the trainer.
                std::thread::sleep(Duration::from_millis(20));
            }
            let samples = ahead.take(k);
            assert_eq!(samples.len(), indices.len());
            for ((video, labels), &index) in samples.iter().zip(indices) {
                let mut expected = vec![0u8; config.video_bytes()];
                let truth = generate_sample(&config, index, &mut expected);
                assert!(video == &expected, "batch {k}, sample {index}");
                assert_eq!(labels.label, i64::from(truth.label));
            }
        }
    }
}
