//! `trajhost eval`: a trained run's model on any dataset with clips of its size — the metrics
//! block of `final_metrics.json` for that data — and, with `--shifts`, on test sets shifted
//! away from its training distribution (`shifts`).

pub mod shifts;
pub mod trained;

use crate::atomic::Named;
use crate::device::parse_device;
use crate::rundir::metrics::{Baselines, SplitMetrics};
use crate::train::data::{self, SplitData, Videos};
use crate::train::metrics::{baselines, evaluate};
use crate::train::source::DataSource;
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::Tensor;
use trained::{CheckpointChoice, ModelChoice, Trained};

/// `trajhost eval`'s arguments.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// The run folder (e.g. results/magvit).
    #[arg(long)]
    pub run: PathBuf,
    /// `last` (the model final_metrics.json measured), `best`, or a checkpoint path.
    #[arg(long, default_value = "last")]
    pub checkpoint: CheckpointChoice,
    /// A dataset folder or `procedural:<data config>`; default: the run's own data (recorded
    /// in its checkpoints).
    #[arg(long)]
    pub data: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "test")]
    pub split: SplitChoice,
    /// Write the report as JSON here (default: print a summary only).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also write every sample's prediction here, one JSON object a line.
    #[arg(long)]
    pub predictions: Option<PathBuf>,
    /// Also evaluate on shifted test sets (generated once, cached) and write
    /// <run>/robustness.json (or --shifts-out).
    #[arg(long)]
    pub shifts: bool,
    /// Write the robustness table here instead of <run>/robustness.json, which holds the table
    /// of the run's own data: needed when --data is other data.
    #[arg(long, requires = "shifts")]
    pub shifts_out: Option<PathBuf>,
    /// Videos in each shifted test set.
    #[arg(long, default_value_t = 400, requires = "shifts")]
    pub shift_samples: usize,
    /// Where the shifted test sets are kept (default: <data>-shifts/ beside the dataset).
    #[arg(long, requires = "shifts")]
    pub shift_cache: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelChoice,
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// libtorch intra-op threads, 1 to 1024 (default: libtorch's choice). Float sums depend on
    /// it: the same count as training reproduces its final metrics to the last bit.
    #[arg(long, value_parser = crate::device::parse_threads, allow_negative_numbers = true)]
    pub threads: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SplitChoice {
    Test,
    Val,
    Train,
    All,
}

/// What `eval` writes: the same metrics block as `final_metrics.json`, for the data given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub run: String,
    pub plugin: String,
    pub checkpoint: PathBuf,
    /// Epochs the checkpoint had trained.
    pub epoch: usize,
    pub data: PathBuf,
    pub split: SplitChoice,
    pub metrics: SplitMetrics,
    /// Against the dataset's own training split (or the evaluated split when it has none).
    pub baselines: Baselines,
    /// Each answer averaged with the mirror image's (the run's `mirror_average`, or
    /// `--mirror-average`).
    #[serde(default)]
    pub mirror_averaged: bool,
    /// The fovea's looks, where `--fovea-passes` made them other than the run's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fovea_passes: Option<usize>,
}

pub fn run(args: &EvalArgs) -> Result<()> {
    refuse_non_utf8_paths(args)?;
    if let Some(threads) = args.threads {
        tch::set_num_threads(threads as i32);
    }
    let device = parse_device(&args.device)?;
    // `--data` parsed once; a recorded one below, after the checkpoint is read.
    let given = args.data.as_deref().map(DataSource::parse).transpose()?;
    let mut trained = load_trained(args, given.as_ref(), device)?;
    let data = match &args.data {
        Some(data) => data.clone(),
        None => {
            let recorded = trained.meta.data.clone().ok_or_else(|| {
                anyhow!(
                    "checkpoint {} does not record its dataset (made by an older trajhost): give --data",
                    trained.checkpoint.display()
                )
            })?;
            DataSource::check_recorded(&recorded).with_context(|| {
                format!(
                    "checkpoint {} records data {}: give --data",
                    trained.checkpoint.display(),
                    recorded.display()
                )
            })?;
            recorded
        }
    };
    let source = match given {
        Some(source) => source,
        None => {
            let source = DataSource::parse(&data)?;
            if !source.is_as_recorded(&data, trained.meta.data_digest.as_deref())? {
                bail!(
                    "{} has changed since this run trained on it (checkpoint {} recorded other contents): give --data {} to score the run on it as it is now",
                    source.input().display(),
                    trained.checkpoint.display(),
                    data.display()
                );
            }
            source
        }
    };
    refuse_writing_over_inputs(args, &trained, &source)?;
    if args.shifts && args.shifts_out.is_none() {
        refuse_replacing_the_runs_own_table(args, &trained, &source)?;
    }
    let report = evaluate_on(
        &mut trained,
        &args.run,
        &data,
        &source,
        args.split,
        device,
        args.predictions.as_deref(),
    )?;
    print_summary(&report);
    if let Some(out) = &args.out {
        crate::atomic::write_json(out, &report)?;
        eprintln!("wrote {}", out.display());
    }
    if args.shifts {
        let cache = args
            .shift_cache
            .clone()
            .unwrap_or_else(|| shifts::default_cache(&source));
        let robustness = shifts::run(
            &mut trained,
            &args.run,
            &source,
            &cache,
            args.shift_samples,
            device,
        )?;
        print!("{}", shifts::render(&robustness));
        let path =
            crate::rundir::robustness::write(&args.run, args.shifts_out.as_deref(), &robustness)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// The reports record their paths as JSON text: a path that is not UTF-8 is refused before
/// the work, not after it.
fn refuse_non_utf8_paths(args: &EvalArgs) -> Result<()> {
    let checkpoint = match &args.checkpoint {
        CheckpointChoice::Path(path) => Some(path),
        _ => None,
    };
    let paths = [
        ("--run", Some(&args.run)),
        ("--data", args.data.as_ref()),
        ("--checkpoint", checkpoint),
        ("--out", args.out.as_ref()),
        ("--predictions", args.predictions.as_ref()),
        ("--shift-cache", args.shift_cache.as_ref()),
        ("--shifts-out", args.shifts_out.as_ref()),
    ];
    for (flag, path) in paths {
        if let Some(path) = path.filter(|p| p.to_str().is_none()) {
            bail!(
                "{flag} {} is not valid UTF-8: eval's reports record paths as text; rename it or link it under a UTF-8 name",
                path.display()
            );
        }
    }
    Ok(())
}

/// `--out` and `--predictions` land on none of what eval reads, nor on each other.
fn refuse_writing_over_inputs(
    args: &EvalArgs,
    trained: &Trained,
    source: &DataSource,
) -> Result<()> {
    let tensors = trained.checkpoint.with_extension("safetensors");
    let outputs = [
        ("--out", &args.out),
        ("--predictions", &args.predictions),
        ("--shifts-out", &args.shifts_out),
    ];
    let outputs: Vec<Named> = outputs
        .iter()
        .filter_map(|(flag, path)| path.as_deref().map(|p| (*flag, p)))
        .collect();
    // A directory or socket given as an output is refused now, not after minutes of work.
    for (flag, path) in &outputs {
        crate::atomic::target(path).context(flag.to_string())?;
    }
    crate::atomic::refuse_outputs_over_inputs(
        &outputs,
        &[
            ("the run folder", &args.run),
            ("the checkpoint", &trained.checkpoint),
            ("the checkpoint's tensors", &tensors),
            ("--data", source.input()),
        ],
    )
}

/// `<run>/robustness.json` is the table of the data the run trained on (`compare` and the
/// dashboard show it as the run's): shifts of other data need a file of their own.
fn refuse_replacing_the_runs_own_table(
    args: &EvalArgs,
    trained: &Trained,
    source: &DataSource,
) -> Result<()> {
    if let Some(flag) = trained.mirror_average_override() {
        bail!(
            "--shifts {flag} would replace the run's own table in {} with one of other answers; give --shifts-out FILE",
            args.run.join(crate::rundir::robustness::ROBUSTNESS).display()
        );
    }
    if let Some(passes) = trained.fovea_passes_override() {
        bail!(
            "--shifts --fovea-passes {passes} would replace the run's own table in {} with one of other looks; give --shifts-out FILE",
            args.run.join(crate::rundir::robustness::ROBUSTNESS).display()
        );
    }
    let Some(recorded) = &trained.meta.data else {
        return Ok(()); // an older checkpoint: nothing to tell them apart by
    };
    if source.is_as_recorded(recorded, trained.meta.data_digest.as_deref())? {
        return Ok(());
    }
    bail!(
        "--data {} is not the data this run trained on ({}, as it was then): its shifts would replace the run's own table in {}; give --shifts-out FILE",
        source.input().display(),
        recorded.display(),
        args.run.join(crate::rundir::robustness::ROBUSTNESS).display()
    )
}

fn load_trained(
    args: &EvalArgs,
    data: Option<&DataSource>,
    device: tch::Device,
) -> Result<Trained> {
    if !args.run.is_dir() {
        bail!("{} is not a run folder", args.run.display());
    }
    let size = match data {
        Some(source) => {
            let [_, h, w] = source.clip_shape()?;
            [h, w]
        }
        None => [64, 64],
    };
    trained::load(&args.run, &args.checkpoint, &args.model, device, size)
}

/// One sample's prediction: a line of `eval --predictions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplePrediction {
    /// The sample's index in the dataset (`trajhost data export --index`).
    pub index: u64,
    pub true_class: String,
    pub class: String,
    /// In the dataset's class order.
    pub probabilities: Vec<f64>,
    pub position: [f64; 3],
    pub target: [f64; 3],
}

/// Evaluates `trained` on `split` of `source` (given on the command line as `data`), with the
/// checkpoint's batch size (so the run's own test split gives exactly its `final_metrics.json`
/// numbers); writes every sample's prediction to `predictions` when given.
pub fn evaluate_on(
    trained: &mut Trained,
    run: &Path,
    data: &Path,
    source: &DataSource,
    split: SplitChoice,
    device: tch::Device,
    predictions: Option<&Path>,
) -> Result<EvalReport> {
    check_clip_shape(trained, source, data)?;
    let config = trained.meta.config.clone();
    let wanted = match split {
        SplitChoice::Train => [true, false, false],
        SplitChoice::Val => [false, true, false],
        SplitChoice::Test => [false, false, true],
        SplitChoice::All => [true; 3],
    };
    let [train, val, test] = match source {
        DataSource::Stored(dir) => {
            data::stored::load_splits(dir, config.predict_future, config.max_train_samples, wanted)?
        }
        procedural => {
            if wanted[0] {
                bail!(
                    "{} renders its training videos as a run needs them; evaluate --split val or test",
                    data.display()
                );
            }
            let loaded = procedural.load(config.predict_future, config.max_train_samples)?;
            [loaded.train, loaded.val, loaded.test]
        }
    };
    let evaluated = match split {
        SplitChoice::Train => train.shallow_clone(),
        SplitChoice::Val => val,
        SplitChoice::Test => test,
        SplitChoice::All => concat(&[&train, &val, &test]),
    };
    if evaluated.is_empty() {
        bail!("dataset {} has no {split:?} samples", data.display());
    }
    let metrics = evaluate(
        &mut trained.model,
        &evaluated,
        config.batch_size,
        device,
        config.loss_weights(),
    )?;
    trained.check_finite("loss and MSE", &[metrics.loss, metrics.mse])?;
    if let Some(path) = predictions {
        let lines = per_sample(trained, &evaluated, device)?;
        let mut text = String::new();
        for line in &lines {
            text += &serde_json::to_string(line)?;
            text.push('\n');
        }
        crate::atomic::write_atomic(path, text.as_bytes())?;
        eprintln!("wrote {} ({} predictions)", path.display(), lines.len());
    }
    let reference = if train.is_empty() { &evaluated } else { &train };
    Ok(EvalReport {
        run: crate::rundir::run_name(run),
        plugin: trained.meta.plugin.name.clone(),
        checkpoint: trained.checkpoint.clone(),
        epoch: trained.meta.epoch,
        data: data.to_path_buf(),
        split,
        metrics,
        baselines: baselines(reference, &evaluated, config.predict_future),
        mirror_averaged: trained.model.mirror_average,
        fovea_passes: trained.fovea_passes_override(),
    })
}

/// Refuses a dataset whose clips the model cannot read, naming both shapes.
fn check_clip_shape(trained: &Trained, source: &DataSource, data: &Path) -> Result<()> {
    let shape = source.clip_shape()?;
    let [t, h, w] = trained.video_shape;
    let known_size = trained.meta.video_shape.is_some();
    if shape[0] != t || (known_size && shape[1..] != [h, w]) {
        bail!(
            "dataset {} has clips of {} frames of {}×{}, the model of {} reads {t} frames of {h}×{w}",
            data.display(),
            shape[0],
            shape[1],
            shape[2],
            trained.checkpoint.display()
        );
    }
    Ok(())
}

fn per_sample(
    trained: &mut Trained,
    split: &SplitData,
    device: tch::Device,
) -> Result<Vec<SamplePrediction>> {
    let order: Vec<i64> = (0..split.len() as i64).collect();
    let indices: Vec<i64> = Vec::try_from(&split.index)?;
    let mut lines = Vec::with_capacity(split.len());
    let batch_size = trained.meta.config.batch_size;
    let form = trained.model.input_form();
    for batch in data::batches(split, &order, batch_size, device, form) {
        let outputs = tch::no_grad(|| trained.model.forward(&batch.videos, &batch.lenses, false))?;
        let probabilities = outputs.logits.softmax(1, tch::Kind::Double);
        let rows = probabilities.size()[0];
        for row in 0..rows {
            let i = lines.len();
            let p: Vec<f64> = Vec::try_from(probabilities.get(row))?;
            let position: Vec<f64> =
                Vec::try_from(outputs.position.get(row).to_kind(tch::Kind::Double))?;
            let target: Vec<f64> = Vec::try_from(batch.target.get(row).to_kind(tch::Kind::Double))?;
            let best = (0..p.len())
                .max_by(|&a, &b| p[a].total_cmp(&p[b]))
                .unwrap_or(0);
            let truth = batch.labels.int64_value(&[row]) as usize;
            lines.push(SamplePrediction {
                index: indices[i] as u64,
                true_class: class_name(truth),
                class: class_name(best),
                probabilities: p,
                position: [position[0], position[1], position[2]],
                target: [target[0], target[1], target[2]],
            });
        }
    }
    Ok(lines)
}

pub fn class_name(c: usize) -> String {
    trajhost_dataset::Class::NAMES
        .get(c)
        .map_or(format!("class {c}"), |n| n.to_string())
}

fn concat(splits: &[&SplitData]) -> SplitData {
    let cat = |pick: fn(&SplitData) -> &Tensor| {
        Tensor::cat(&splits.iter().map(|s| pick(s)).collect::<Vec<_>>(), 0)
    };
    let videos: Vec<Tensor> = splits.iter().map(|s| s.all_videos()).collect();
    SplitData {
        videos: Videos::Held(Tensor::cat(&videos, 0)),
        labels: cat(|s| &s.labels),
        target: cat(|s| &s.target),
        track: cat(|s| &s.track),
        index: cat(|s| &s.index),
        lenses: cat(|s| &s.lenses),
    }
}

fn print_summary(r: &EvalReport) {
    let m = &r.metrics;
    let mut epoch = match r.mirror_averaged {
        true => format!("{}, mirror-averaged", r.epoch),
        false => r.epoch.to_string(),
    };
    if let Some(passes) = r.fovea_passes {
        epoch += &format!(", {passes} fovea looks");
    }
    println!(
        "{} ({}, epoch {epoch}) on {} [{:?}, {} videos]: accuracy {:.2}%, MSE {:.5} (mean-position {:.4}, constant-velocity {:.4}, curve-fit limit {})",
        r.run,
        r.plugin,
        r.data.display(),
        r.split,
        m.samples,
        100.0 * m.accuracy,
        m.mse,
        r.baselines.mean_position_mse,
        r.baselines.constant_velocity_mse,
        r.baselines
            .curve_fit_mse
            .map_or("-".into(), |l| format!("{l:.5}")),
    );
}
