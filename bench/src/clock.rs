//! Timing the steps of a training or inference measurement, in one of two ways:
//!
//! * **fixed**: `warmup` untimed steps, then `steps` timed ones, and the process ends;
//! * **served** (`--serve`): `warmup` untimed steps, then `{"ready": true}` on stdout, and
//!   for every `run` line on stdin a block of `steps` timed steps, each block reported as one
//!   JSON line (`{"block": k, "videos_per_s": …}`), until `stop` or the end of stdin.
//!
//! Served, the orchestrator (`bench/python/run_bench.py`) keeps one warmed-up process per side
//! and alternates blocks between them, so trajhost and every PyTorch peer are timed in
//! interleaved pairs seconds apart, and a slow minute of the machine hits all of them alike.
//! The Python side's `StepClock` (`bench/python/train_loop.py`) speaks the same protocol.
//!
//! Each timed step runs from where the previous one ended, so preparing its batch is timed too,
//! as in the PyTorch loop; waiting for the next `run` is not timed.

use crate::{minor_faults, peak_rss_kib, stats};
use serde_json::{json, Value};
use std::io::{BufRead, Write};
use std::time::Instant;

/// Where a served clock reads its commands and writes its block lines.
pub struct Channel {
    pub commands: Box<dyn BufRead>,
    pub out: Box<dyn Write>,
}

impl Channel {
    /// stdin and stdout.
    pub fn stdio() -> Channel {
        Channel {
            commands: Box::new(std::io::BufReader::new(std::io::stdin())),
            out: Box::new(std::io::stdout()),
        }
    }

    fn send(&mut self, value: &Value) {
        // A closed pipe means the orchestrator is gone; the next read ends the run.
        let _ = writeln!(self.out, "{value}");
        let _ = self.out.flush();
    }

    /// True for `run`; false for `stop`, the end of input or anything unreadable.
    fn next_is_run(&mut self) -> bool {
        let mut line = String::new();
        match self.commands.read_line(&mut line) {
            Ok(n) if n > 0 => line.trim() == "run",
            _ => false,
        }
    }
}

pub struct StepClock {
    warmup: usize,
    /// Timed steps per block (fixed: the one block).
    block_steps: usize,
    step: usize,
    last: Instant,
    step_seconds: Vec<f64>,
    videos: usize,
    faults_at_warmup: u64,
    channel: Option<Channel>,
    /// Served: the current block's first step and videos so far; the blocks done.
    block_start: usize,
    block_videos: usize,
    blocks: Vec<Value>,
}

impl StepClock {
    /// `warmup` untimed steps, then `steps` timed ones.
    pub fn fixed(warmup: usize, steps: usize) -> StepClock {
        StepClock::new(warmup, steps, None)
    }

    /// `warmup` untimed steps (at least one: `ready` follows a step), then a block of `steps`
    /// timed ones per `run` command.
    pub fn served(warmup: usize, steps: usize, channel: Channel) -> StepClock {
        StepClock::new(warmup.max(1), steps.max(1), Some(channel))
    }

    fn new(warmup: usize, block_steps: usize, channel: Option<Channel>) -> StepClock {
        StepClock {
            warmup,
            block_steps,
            step: 0,
            last: Instant::now(),
            step_seconds: Vec::new(),
            videos: 0,
            faults_at_warmup: minor_faults(),
            channel,
            block_start: 0,
            block_videos: 0,
            blocks: Vec::new(),
        }
    }

    /// The number of steps begun so far (the global step of the one under way).
    pub fn step(&self) -> usize {
        self.step
    }

    /// Between epochs: the time spent making the next epoch's order is not a step's.
    pub fn restart(&mut self) {
        self.last = Instant::now();
    }

    /// Ends the current step of `videos` videos; true once every step has run.
    pub fn step_done(&mut self, videos: usize) -> bool {
        let now = Instant::now();
        if self.step >= self.warmup {
            self.step_seconds
                .push(now.duration_since(self.last).as_secs_f64());
            self.videos += videos;
            self.block_videos += videos;
        }
        self.last = now;
        self.step += 1;
        if self.step == self.warmup {
            self.faults_at_warmup = minor_faults();
        }
        let timed = self.step - self.warmup.min(self.step);
        match self.channel.is_some() {
            false => self.step >= self.warmup + self.block_steps,
            true if self.step < self.warmup => false,
            true if self.step == self.warmup => self.wait(json!({"ready": true})),
            true if timed - self.block_start < self.block_steps => false,
            true => {
                let block = self.finish_block();
                self.wait(block)
            }
        }
    }

    /// Reports the block just timed and starts the next one.
    fn finish_block(&mut self) -> Value {
        let seconds = &self.step_seconds[self.block_start..];
        let total: f64 = seconds.iter().sum();
        let block = json!({
            "block": self.blocks.len(),
            "videos": self.block_videos,
            "seconds": total,
            "videos_per_s": self.block_videos as f64 / total.max(1e-12),
            "steps": stats(seconds),
        });
        self.blocks.push(block.clone());
        self.block_start = self.step_seconds.len();
        self.block_videos = 0;
        block
    }

    /// Sends `line`, then waits for the next command: false (go on) for `run`, true (done)
    /// otherwise. The wait is not timed.
    fn wait(&mut self, line: Value) -> bool {
        let channel = self.channel.as_mut().expect("served");
        channel.send(&line);
        let done = !channel.next_is_run();
        self.last = Instant::now();
        done
    }

    /// The fields every measurement reports (served: every block's report too).
    pub fn report(&self, mut fields: Value) -> Value {
        let seconds: f64 = self.step_seconds.iter().sum();
        let timed = self.step_seconds.len().max(1) as f64;
        let common = json!({
            "side": "trajhost",
            "warmup_steps": self.warmup,
            "timed_steps": self.step_seconds.len(),
            "videos": self.videos,
            "seconds": seconds,
            "videos_per_s": self.videos as f64 / seconds.max(1e-12),
            "steps": stats(&self.step_seconds),
            "minor_faults_per_step": (minor_faults() - self.faults_at_warmup) as f64 / timed,
            "peak_rss_kib": peak_rss_kib(),
        });
        if let (Some(fields), Value::Object(common)) = (fields.as_object_mut(), common) {
            fields.extend(common);
            if self.channel.is_some() {
                fields.insert("blocks".into(), Value::Array(self.blocks.clone()));
            }
        }
        fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use std::sync::{Arc, Mutex};

    /// A `Write` whose bytes the test can read afterwards.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines(out: &Shared) -> Vec<Value> {
        String::from_utf8(out.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn fixed_runs_warmup_then_the_timed_steps() {
        let mut clock = StepClock::fixed(2, 3);
        let done: Vec<bool> = (0..5).map(|_| clock.step_done(4)).collect();
        assert_eq!(done, [false, false, false, false, true]);
        let report = clock.report(json!({}));
        assert_eq!(report["timed_steps"], 3);
        assert_eq!(report["videos"], 12);
        assert!(report.get("blocks").is_none());
    }

    /// A served clock reading `commands`, and what it sends.
    fn served(warmup: usize, block_steps: usize, commands: &'static str) -> (StepClock, Shared) {
        let out = Shared::default();
        let channel = Channel {
            commands: Box::new(Cursor::new(commands)),
            out: Box::new(out.clone()),
        };
        (StepClock::served(warmup, block_steps, channel), out)
    }

    #[test]
    fn served_times_one_block_per_run_and_ends_at_stop() {
        let (mut clock, out) = served(1, 2, "run\nrun\nstop\nrun\n");
        let mut steps = 0;
        while !clock.step_done(3) {
            steps += 1;
            assert!(steps < 100, "never ended");
        }
        // One warm-up step, then two blocks of two steps; `stop` ends it at the second block.
        assert_eq!(clock.step(), 5);
        let sent = lines(&out);
        assert_eq!(sent.len(), 3, "{sent:?}");
        assert_eq!(sent[0], json!({"ready": true}));
        for (k, block) in sent[1..].iter().enumerate() {
            assert_eq!(block["block"], k);
            assert_eq!(block["videos"], 6);
            assert_eq!(block["steps"]["n"], 2);
            assert!(block["videos_per_s"].as_f64().unwrap() > 0.0);
        }
        let report = clock.report(json!({"what": "train"}));
        assert_eq!(report["timed_steps"], 4);
        assert_eq!(report["blocks"].as_array().unwrap().len(), 2);
        assert_eq!(report["what"], "train");
    }

    #[test]
    fn served_ends_after_warmup_when_input_closes() {
        let (mut clock, out) = served(2, 5, "");
        assert!(!clock.step_done(1));
        assert!(clock.step_done(1));
        assert_eq!(lines(&out), [json!({"ready": true})]);
    }
}
