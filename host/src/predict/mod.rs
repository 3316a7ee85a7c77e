//! `trajhost predict`: what a trained run's model says about one clip — the class with its
//! probabilities and the ball's position `predict_future` frames after the clip — optionally
//! drawn onto the clip as a GIF (`overlay`).

pub mod input;
pub mod overlay;

use crate::device::parse_device;
use crate::eval::class_name;
use crate::eval::trained::{self, CheckpointChoice, ModelChoice};
use crate::train::model_input::{self, InputForm};
use crate::train::pinhole::Lens;
use anyhow::{bail, Context, Result};
use image::imageops::FilterType;
use image::RgbImage;
use serde::Serialize;
use std::path::PathBuf;
use tch::{Device, Kind, Tensor};

/// `trajhost predict`'s arguments.
#[derive(Debug, clap::Args)]
pub struct PredictArgs {
    /// The run folder (e.g. results/magvit).
    #[arg(long)]
    pub run: PathBuf,
    /// The clip: an animated .gif, a folder of .png frames, a .npy or .safetensors array
    /// (T, 3, H, W) of u8, or a trajhost shard (with --sample).
    pub video: PathBuf,
    /// Which sample of a shard (default 0).
    #[arg(long)]
    pub sample: Option<usize>,
    /// `last`, `best`, or a checkpoint path.
    #[arg(long, default_value = "last")]
    pub checkpoint: CheckpointChoice,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Write the clip with the predicted (and, for shards, the true) future position drawn in.
    #[arg(long)]
    pub overlay: Option<PathBuf>,
    /// The camera's horizontal field of view in degrees, which a model with
    /// `position_head: pinhole` (and the overlay) reads depth through; default: a shard
    /// sample's own intrinsics, else the generator's default lens (50°).
    #[arg(long, value_parser = parse_fov)]
    pub fov_deg: Option<f64>,
    #[command(flatten)]
    pub model: ModelChoice,
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    pub video: PathBuf,
    /// What was done to the clip to fit the model (resizing, frames dropped); empty if nothing.
    pub adjustments: Vec<String>,
    pub class: String,
    /// Every class's probability, in the dataset's class order.
    pub probabilities: Vec<(String, f64)>,
    /// The ball's (x, y, z) in normalised camera coordinates (docs/dataset.md).
    pub position: [f64; 3],
    /// How many frames after the clip's last frame `position` is.
    pub frames_ahead: usize,
    /// Where the model tracked the ball in each frame it read, oldest first (same coordinates).
    pub track: Vec<[f64; 3]>,
    /// A shard sample's own labels.
    pub truth: Option<Truth>,
    /// The answer averaged with the mirror image's (the run's `mirror_average`, or
    /// `--mirror-average`).
    pub mirror_averaged: bool,
    /// The fovea's looks, where `--fovea-passes` made them other than the run's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fovea_passes: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Truth {
    pub class: String,
    pub position: [f64; 3],
}

fn parse_fov(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(fov) if fov > 1.0 && fov < 179.0 => Ok(fov),
        _ => Err(format!(
            "{text:?} is not a field of view: degrees, above 1 and below 179"
        )),
    }
}

pub fn run(args: &PredictArgs) -> Result<()> {
    if let Some(overlay) = &args.overlay {
        overlay::check_path(overlay)?;
        crate::atomic::refuse_outputs_over_inputs(
            &[("--overlay", overlay)],
            &[("VIDEO", &args.video), ("the run folder", &args.run)],
        )?;
    }
    let device = parse_device(&args.device)?;
    let default = trajhost_dataset::DataConfig::default_config();
    let size = [default.height as i64, default.width as i64];
    let mut trained = trained::load(&args.run, &args.checkpoint, &args.model, device, size)?;
    let bounds = input::Bounds::for_clip(trained.video_shape)?;
    let clip = input::read(&args.video, args.sample, bounds)?;
    let (frames, adjustments) = fit(clip.frames, clip.total, trained.video_shape)?;
    for note in &adjustments {
        eprintln!("note: {note}");
    }
    let video = to_tensor(&frames, device, trained.model.input_form());
    let intrinsics = clip.truth.as_ref().map(|t| t.intrinsics);
    let fov_deg = args.fov_deg.unwrap_or(default.fov_deg);
    let lens = match (args.fov_deg, intrinsics) {
        (None, Some(k)) => Lens::from_intrinsics(k).with_context(|| {
            format!(
                "{} sample {} (--fov-deg gives a lens instead)",
                args.video.display(),
                args.sample.unwrap_or(0)
            )
        })?,
        // The clip was resized to the model's size; the lens keeps its aspect.
        _ => {
            let [_, h, w] = trained.video_shape;
            Lens::from_fov(fov_deg, w as usize, h as usize)
        }
    };
    let outputs = tch::no_grad(|| {
        trained
            .model
            .forward(&video, &Lens::table(&[lens]).to_device(device), false)
    })?;
    let probabilities: Vec<f64> = Vec::try_from(outputs.logits.softmax(1, Kind::Double).get(0))?;
    let position: Vec<f64> = Vec::try_from(outputs.position.get(0).to_kind(Kind::Double))?;
    let track: Vec<f64> = Vec::try_from(outputs.track.get(0).flatten(0, -1).to_kind(Kind::Double))?;
    let values: Vec<f64> = probabilities
        .iter()
        .chain(&position)
        .chain(&track)
        .copied()
        .collect();
    trained.check_finite("class probabilities and position", &values)?;
    let best = (0..probabilities.len())
        .max_by(|&a, &b| probabilities[a].total_cmp(&probabilities[b]))
        .unwrap_or(0);
    let frames_ahead = trained.meta.config.predict_future;
    let truth = clip.truth.as_ref().and_then(|t| {
        // Positions count from the video's first frame; the model read its last ones.
        let at = t.positions.get(clip.total.checked_sub(1)? + frames_ahead)?;
        Some(Truth {
            class: class_name(t.class),
            position: at.map(f64::from),
        })
    });
    let prediction = Prediction {
        video: args.video.clone(),
        adjustments,
        class: class_name(best),
        probabilities: probabilities
            .iter()
            .enumerate()
            .map(|(c, &p)| (class_name(c), p))
            .collect(),
        position: [position[0], position[1], position[2]],
        frames_ahead,
        track: track.chunks(3).map(|p| [p[0], p[1], p[2]]).collect(),
        truth,
        mirror_averaged: trained.model.mirror_average,
        fovea_passes: trained.fovea_passes_override(),
    };
    if let Some(path) = &args.overlay {
        let intrinsics = intrinsics.filter(|_| args.fov_deg.is_none());
        overlay::write(path, &frames, &prediction, intrinsics, fov_deg)?;
        eprintln!("wrote {}", path.display());
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&prediction)?);
    } else {
        print!("{}", render(&prediction));
    }
    Ok(())
}

/// The clip as the model reads it: the last `T` of the video's `total` frames (`frames` are
/// its last ones, as `input::read` keeps them), resized to `H × W` when they differ.
fn fit(
    mut frames: Vec<RgbImage>,
    total: usize,
    [t, h, w]: [i64; 3],
) -> Result<(Vec<RgbImage>, Vec<String>)> {
    let mut notes = Vec::new();
    // The shape was checked when the checkpoint was loaded; these only keep the casts honest.
    let (Ok(t), Ok(h), Ok(w)) = (usize::try_from(t), u32::try_from(h), u32::try_from(w)) else {
        bail!("the model's clip shape [{t}, {h}, {w}] is not one predict can fit");
    };
    if frames.len() < t || t == 0 {
        bail!("the model reads clips of {t} frames; this video has {total}");
    }
    if total > t {
        notes.push(format!(
            "the video has {total} frames; the model reads the last {t}"
        ));
    }
    frames.drain(..frames.len() - t);
    let (fw, fh) = frames[0].dimensions();
    if [fw, fh] != [w, h] {
        notes.push(format!(
            "frames resized from {fw}×{fh} to {w}×{h}, the model's size"
        ));
    }
    // Every frame, not only the first: frames of another size never reach the tensor.
    for frame in &mut frames {
        if frame.dimensions() != (w, h) {
            *frame = image::imageops::resize(frame, w, h, FilterType::Triangle);
        }
    }
    Ok((frames, notes))
}

/// `(1, T, 3, H, W)` float on `device`, the model's input made as in training and eval.
fn to_tensor(frames: &[RgbImage], device: Device, form: InputForm) -> Tensor {
    let (w, h) = frames[0].dimensions();
    let mut bytes = Vec::with_capacity(frames.len() * 3 * (w * h) as usize);
    for frame in frames {
        for channel in 0..3 {
            bytes.extend(frame.pixels().map(|p| p.0[channel]));
        }
    }
    let clip = [frames.len() as i64, 3, h as i64, w as i64];
    model_input::from_bytes(&[&bytes], clip, device, form)
}

pub fn render(p: &Prediction) -> String {
    let probabilities: Vec<String> = p
        .probabilities
        .iter()
        .map(|(c, v)| format!("{c} {:.1}%", 100.0 * v))
        .collect();
    let [x, y, z] = p.position;
    let mut text = format!(
        "class     {} ({})\nposition  ({x:.4}, {y:.4}, {z:.4}), {} frames after the last frame (normalised camera coordinates)\n",
        p.class,
        probabilities.join(", "),
        p.frames_ahead
    );
    if p.mirror_averaged {
        text += "          averaged with the mirror image's answer\n";
    }
    if let Some(passes) = p.fovea_passes {
        text += &format!("          the fovea looking {passes} times\n");
    }
    if let Some(t) = &p.truth {
        let [x, y, z] = t.position;
        let error = (0..3)
            .map(|i| (p.position[i] - t.position[i]).powi(2))
            .sum::<f64>()
            / 3.0;
        text += &format!(
            "truth     {}, ({x:.4}, {y:.4}, {z:.4}); squared error {error:.5} (mean over axes)\n",
            t.class
        );
    }
    text
}
