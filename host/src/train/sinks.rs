//! Where a run reports: every finished epoch's [`EpochRecord`] goes to a list of sinks
//! (`metrics.jsonl`, TensorBoard, the curves PNG), to `run.log` and to the console; the run's
//! state goes to `PROGRESS.txt` and the log's heartbeat. The training loop builds each record
//! once and knows nothing of these formats.

use super::tensorboard::{EventWriter, HParam};
use crate::config::TrainConfig;
use crate::curves::draw_training_curves;
use crate::rundir::log::RunLog;
use crate::rundir::metrics::{self, EpochRecord, FinalMetrics, SplitMetrics};
use crate::rundir::progress::Progress;
use crate::rundir::TRAINING_CURVES;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// Something that takes each finished epoch's record, and the run's final metrics.
pub trait EpochSink {
    fn record(&mut self, dir: &Path, record: &EpochRecord) -> Result<()>;

    /// The run starts (or resumes) with these settings.
    fn start(&mut self, _dir: &Path, _settings: &[(String, HParam)]) -> Result<()> {
        Ok(())
    }

    /// One optimiser step done (`global_step` counts from 1) at learning rate `lr`.
    fn step(&mut self, _dir: &Path, _global_step: i64, _lr: f64) -> Result<()> {
        Ok(())
    }

    /// The run is over: its test metrics and baselines.
    fn finish(&mut self, _dir: &Path, _metrics: &FinalMetrics) -> Result<()> {
        Ok(())
    }
}

/// A line of `metrics.jsonl`: the record every reader of the run folder uses.
struct MetricsFile;

impl EpochSink for MetricsFile {
    fn record(&mut self, dir: &Path, record: &EpochRecord) -> Result<()> {
        metrics::append_record(dir, record)
    }
}

/// TensorBoard scalars, every number of the epoch's record (`tags`); the event file is created
/// with the first record.
#[derive(Default)]
struct TensorBoard(Option<EventWriter>);

impl TensorBoard {
    fn events(&mut self, dir: &Path) -> Result<&mut EventWriter> {
        if self.0.is_none() {
            self.0 = Some(EventWriter::create(dir)?);
        }
        Ok(self.0.as_mut().expect("just created"))
    }
}

impl EpochSink for TensorBoard {
    fn record(&mut self, dir: &Path, r: &EpochRecord) -> Result<()> {
        let events = self.events(dir)?;
        for (tag, value) in tags(r) {
            events.scalar(&tag, r.epoch as i64, value)?;
        }
        events.png(
            "val/confusion",
            r.epoch as i64,
            &confusion_png(&r.val.confusion)?,
        )
    }

    fn start(&mut self, dir: &Path, settings: &[(String, HParam)]) -> Result<()> {
        self.events(dir)?.hparams(settings)
    }

    /// The schedule as it ran, step by step (the epoch records' `lr` is the epoch's last).
    fn step(&mut self, dir: &Path, global_step: i64, lr: f64) -> Result<()> {
        self.events(dir)?.scalar("lr/step", global_step, lr)
    }

    /// At the last epoch's step: `test/*` as `val/*` above, `baselines/*`, and the curves.
    fn finish(&mut self, dir: &Path, m: &FinalMetrics) -> Result<()> {
        let step = m.epochs_trained as i64;
        let events = self.events(dir)?;
        for (tag, value) in split_tags("test", &m.test) {
            events.scalar(&tag, step, value)?;
        }
        let b = &m.baselines;
        let mut baselines = vec![
            ("baselines/mean_position_mse", b.mean_position_mse),
            ("baselines/constant_velocity_mse", b.constant_velocity_mse),
            ("baselines/chance_accuracy", b.chance_accuracy),
        ];
        if let Some(limit) = b.curve_fit_mse {
            baselines.push(("baselines/curve_fit_mse", limit));
        }
        for (tag, value) in baselines {
            events.scalar(tag, step, value)?;
        }
        events.png("test/confusion", step, &confusion_png(&m.test.confusion)?)?;
        if let Ok(png) = std::fs::read(dir.join(TRAINING_CURVES)) {
            events.png("training_curves", step, &png)?;
        }
        Ok(())
    }
}

/// An epoch's numbers as TensorBoard tags: per split (`train/`, `val/`) the losses (total and
/// per term), accuracy overall and per class, MSE overall and per axis; then `lr`, the
/// training speed and the time so far.
fn tags(r: &EpochRecord) -> Vec<(String, f64)> {
    let mut tags = split_tags("train", &r.train);
    tags.extend(split_tags("val", &r.val));
    tags.push(("lr".into(), r.lr));
    tags.push((
        "speed/train_videos_per_second".into(),
        r.train_videos_per_second,
    ));
    tags.push(("time/elapsed_seconds".into(), r.elapsed_seconds));
    tags
}

/// What a run was trained with, for TensorBoard's HParams tab.
pub fn settings(config: &TrainConfig, plugin: &str, data: &Path) -> Vec<(String, HParam)> {
    let number = |name: &str, value: f64| (name.to_string(), HParam::Number(value));
    let text = |name: &str, value: String| (name.to_string(), HParam::Text(value));
    vec![
        text("plugin", plugin.to_string()),
        text("backbone", config.backbone.clone()),
        text("data", data.display().to_string()),
        text("phase", config.phase.clone()),
        text(
            "position_head",
            format!("{:?}", config.position_head).to_lowercase(),
        ),
        text("background", config.background.name().to_string()),
        text("colour", config.colour.name().to_string()),
        number("fovea_passes", config.fovea_passes as f64),
        text("mirror_average", config.mirror_average.to_string()),
        number("lr", config.lr),
        number("min_lr", config.min_lr),
        number("weight_decay", config.weight_decay),
        number("batch_size", config.batch_size as f64),
        number("epochs", config.epochs as f64),
        number("warmup_steps", config.warmup_steps as f64),
        number("grad_clip", config.grad_clip.unwrap_or(0.0)),
        number("classification_weight", config.classification_weight),
        number("prediction_weight", config.prediction_weight),
        number("tracking_weight", config.tracking_weight),
        number("predict_future", config.predict_future as f64),
        number("seed", config.seed as f64),
        number(
            "time_budget_minutes",
            config.time_budget_minutes.unwrap_or(0.0),
        ),
    ]
}

/// A confusion matrix as a PNG for TensorBoard's Images tab: a 24-pixel cell per (true class
/// row, predicted class column), white for all of the row's videos, black for none.
fn confusion_png(confusion: &[[u64; 4]; 4]) -> Result<Vec<u8>> {
    const CELL: u32 = 24;
    let image = image::GrayImage::from_fn(4 * CELL, 4 * CELL, |x, y| {
        let row = &confusion[(y / CELL) as usize];
        let total = row.iter().sum::<u64>().max(1) as f64;
        let share = row[(x / CELL) as usize] as f64 / total;
        image::Luma([(255.0 * share).round() as u8])
    });
    let mut png = Vec::new();
    image.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
    Ok(png)
}

/// One split's numbers under `split/`.
fn split_tags(split: &str, m: &SplitMetrics) -> Vec<(String, f64)> {
    let mut tags = Vec::new();
    let mut add = |name: &str, value: f64| tags.push((format!("{split}/{name}"), value));
    add("loss", m.loss);
    add("loss/classification", m.classification_loss);
    add("loss/prediction", m.prediction_loss);
    add("loss/tracking", m.tracking_loss);
    add("accuracy", m.accuracy);
    for (class, value) in trajhost_dataset::Class::NAMES
        .iter()
        .zip(m.per_class_accuracy)
    {
        add(&format!("accuracy/{class}"), value);
    }
    add("mse", m.mse);
    for (axis, value) in ["x", "y", "z"].iter().zip(m.mse_per_axis) {
        add(&format!("mse/{axis}"), value);
    }
    tags
}

/// `training_curves.png`, redrawn from the whole history (after `MetricsFile` appended).
struct Curves;

impl EpochSink for Curves {
    fn record(&mut self, dir: &Path, _: &EpochRecord) -> Result<()> {
        draw_training_curves(&metrics::read_history(dir)?, &dir.join(TRAINING_CURVES))
    }
}

/// A run's outputs: its folder, `run.log`, the console and the epoch sinks.
pub struct RunOutputs {
    pub dir: PathBuf,
    pub name: String,
    log: RunLog,
    pub bar: indicatif::ProgressBar,
    sinks: Vec<Box<dyn EpochSink>>,
}

impl RunOutputs {
    pub fn open(dir: &Path) -> Result<Self> {
        // `--out .` has no folder name to show.
        let name = dir
            .file_name()
            .map_or("run".into(), |n| n.to_string_lossy().into_owned());
        Ok(RunOutputs {
            dir: dir.to_path_buf(),
            log: RunLog::open(dir)?,
            bar: progress_bar(&name),
            name,
            sinks: vec![
                Box::new(MetricsFile),
                Box::new(TensorBoard::default()),
                Box::new(Curves),
            ],
        })
    }

    /// A line in `run.log`.
    pub fn log(&self, line: &str) {
        self.log.line(line);
    }

    /// A line on the console, above the progress bar when there is one.
    pub fn say(&self, line: String) {
        if self.bar.is_hidden() {
            eprintln!("{line}");
        } else {
            self.bar.println(line);
        }
    }

    /// Hands a finished epoch to every sink, the log and the console.
    pub fn epoch(&mut self, record: &EpochRecord, epochs: usize) -> Result<()> {
        for sink in &mut self.sinks {
            sink.record(&self.dir, record)?;
        }
        let (t, v) = (&record.train, &record.val);
        self.log(&format!(
            "epoch {}/{epochs}: train loss {:.4} acc {:.3} mse {:.4} | val loss {:.4} acc {:.3} mse {:.4} | {:.0} videos/s",
            record.epoch, t.loss, t.accuracy, t.mse, v.loss, v.accuracy, v.mse,
            record.train_videos_per_second
        ));
        self.say(format!(
            "[{}] epoch {}/{epochs} train loss {:.4} | val acc {:.1}% mse {:.4} | {:.0} videos/s",
            self.name,
            record.epoch,
            t.loss,
            100.0 * v.accuracy,
            v.mse,
            record.train_videos_per_second
        ));
        Ok(())
    }

    /// Tells every sink the run's settings.
    pub fn start(&mut self, settings: &[(String, HParam)]) -> Result<()> {
        for sink in &mut self.sinks {
            sink.start(&self.dir, settings)?;
        }
        Ok(())
    }

    /// Tells every sink of an optimiser step.
    pub fn step(&mut self, global_step: i64, lr: f64) -> Result<()> {
        for sink in &mut self.sinks {
            sink.step(&self.dir, global_step, lr)?;
        }
        Ok(())
    }

    /// Hands the run's final metrics to every sink.
    pub fn finish(&mut self, metrics: &FinalMetrics) -> Result<()> {
        for sink in &mut self.sinks {
            sink.finish(&self.dir, metrics)?;
        }
        Ok(())
    }

    /// Rewrites `PROGRESS.txt` and tells the heartbeat where the run is.
    pub fn progress(&self, progress: &Progress) -> Result<()> {
        self.log.set_status(format!(
            "epoch {}/{} step {}/{}",
            progress.epochs_done + 1,
            progress.epochs,
            progress.step_in_epoch,
            progress.steps_per_epoch
        ));
        progress.write(&self.dir)
    }
}

/// A bar with loss and ETA on a terminal; hidden otherwise (the epoch lines still print).
fn progress_bar(run: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(1).with_prefix(run.to_string());
    let style =
        indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ETA {eta}")
            .expect("valid template")
            .progress_chars("=> ");
    bar.set_style(style);
    bar
}
