//! `trajhost data check`: every property a consumer relies on, reported as a list of problems.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use rayon::prelude::*;

use crate::camera::denormalise;
use crate::config::DataConfig;
use crate::error::Result;
use crate::loader::read_checked_shard;
use crate::manifest::Manifest;
use crate::sample::{class_of, position_at};
use crate::shard::{hash_file, Shard};
use crate::trajectory::{Class, BALL_RADIUS};
use crate::validity::{check_trajectory, tolerance};

/// Red minus blue (0–255) that the pixel under the ball centre must reach in the classic look:
/// the ball is saturated orange, every background colour is near-neutral or blue. (With an
/// `appearance` section colours vary; only the geometry is checked.)
const BALL_CONTRAST: i32 = 60;
/// Problems printed by `Display` (all are kept in `problems`).
const SHOWN: usize = 40;

#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    pub samples_checked: usize,
    pub shards_checked: usize,
    pub problems: Vec<String>,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "checked {} samples in {} shards: ",
            self.samples_checked, self.shards_checked
        )?;
        if self.ok() {
            return write!(f, "all checks passed");
        }
        write!(f, "{} problem(s)", self.problems.len())?;
        for p in self.problems.iter().take(SHOWN) {
            write!(f, "\n  - {p}")?;
        }
        if self.problems.len() > SHOWN {
            write!(f, "\n  ... and {} more", self.problems.len() - SHOWN)?;
        }
        Ok(())
    }
}

/// Checks a dataset folder. `Err` only when the manifest cannot be read at all.
pub fn check_dataset(dir: &Path) -> Result<CheckReport> {
    let manifest = Manifest::load(dir)?;
    let cfg = &manifest.config;
    let mut report = CheckReport::default();
    let problems = &mut report.problems;
    // The manifest-level checks are the loader's own, so `data check` and `train` agree.
    problems.extend(manifest.problems(dir));
    if cfg.validate().is_err() {
        return Ok(report);
    }
    let mut class_counts = vec![0usize; Class::ALL.len()];
    for entry in &manifest.shards {
        let path = dir.join(&entry.file);
        match hash_file(&path) {
            Ok((_, sha)) if sha != entry.sha256 => problems.push(format!(
                "{}: sha256 {sha} does not match the manifest ({})",
                entry.file, entry.sha256
            )),
            Ok(_) => {}
            Err(e) => {
                problems.push(e.to_string());
                continue;
            }
        }
        let shard = match read_checked_shard(dir, entry, cfg) {
            Ok(shard) => shard,
            Err(e) => {
                problems.push(e.to_string());
                continue;
            }
        };
        for &label in &shard.labels {
            if let Some(c) = class_counts.get_mut(label as usize) {
                *c += 1;
            }
        }
        let sample_problems: Vec<String> = (0..shard.n)
            .into_par_iter()
            .flat_map_iter(|i| check_sample(cfg, &shard, i))
            .map(|p| format!("{}: {p}", entry.file))
            .collect();
        problems.extend(sample_problems);
        report.shards_checked += 1;
        report.samples_checked += shard.n;
    }
    check_counts(&manifest, &class_counts, problems);
    Ok(report)
}

/// Class balance of the labels against the manifest (split counts are in
/// [`Manifest::problems`]).
fn check_counts(manifest: &Manifest, class_counts: &[usize], problems: &mut Vec<String>) {
    let cfg = &manifest.config;
    let found: BTreeMap<String, usize> = cfg
        .classes
        .iter()
        .map(|c| (c.name().to_string(), class_counts[c.index() as usize]))
        .collect();
    let (lo, hi) = (found.values().min(), found.values().max());
    if manifest.complete
        && (found != manifest.class_counts || hi.zip(lo).is_some_and(|(h, l)| h - l > 1))
    {
        problems.push(format!(
            "class balance: labels count {found:?}, manifest says {:?}",
            manifest.class_counts
        ));
    }
}

/// Problems of sample `i` of `shard`: label, finiteness, trajectory shape, ball visibility.
fn check_sample(cfg: &DataConfig, shard: &Shard, i: usize) -> Vec<String> {
    let index = shard.indices[i];
    let mut problems = Vec::new();
    let expected = class_of(cfg, index);
    if shard.labels[i] != expected.index() {
        problems.push(format!(
            "sample {index}: label {} but index {index} is {}",
            shard.labels[i],
            expected.name()
        ));
    }
    let positions = shard.positions_of(i);
    let finite = |name: &str, xs: &[f32]| {
        (!xs.iter().all(|x| x.is_finite()))
            .then(|| format!("sample {index}: NaN or infinity in {name}"))
    };
    problems.extend(
        [
            finite("positions", positions),
            finite("intrinsics", &shard.intrinsics[i * 9..i * 9 + 9]),
            finite("extrinsics", &shard.extrinsics[i * 16..i * 16 + 16]),
            finite("params", shard.params_of(i)),
        ]
        .into_iter()
        .flatten(),
    );
    if !problems.is_empty() {
        return problems;
    }
    let points: Vec<_> = (0..shard.t + shard.horizon)
        .map(|f| position_at(positions, f))
        .collect();
    if let Err(e) = check_trajectory(expected, &points, tolerance(cfg.augmentation.noise_level)) {
        problems.push(format!("sample {index} ({}): {e}", expected.name()));
    }
    let classic = cfg.appearance.is_none();
    if let Some(frame) = first_invisible_frame(shard, i, &points, classic) {
        problems.push(format!("sample {index}: ball not visible in frame {frame}"));
    }
    problems
}

/// The first clip frame where the ball (centre ± radius) leaves the image, is behind the
/// camera, or (in the classic look, `classic`) the pixel under its centre does not have the
/// ball's colour.
fn first_invisible_frame(
    shard: &Shard,
    i: usize,
    points: &[glam::DVec3],
    classic: bool,
) -> Option<usize> {
    let k = &shard.intrinsics[i * 9..i * 9 + 9];
    let (fx, cx, fy, cy) = (k[0] as f64, k[2] as f64, k[4] as f64, k[5] as f64);
    let (w, h) = (shard.w as f64, shard.h as f64);
    let plane = shard.w * shard.h;
    let video = shard.video(i);
    (0..shard.t).find(|&f| {
        let pc = denormalise(points[f]);
        if pc.z <= 0.05 {
            return true;
        }
        let (u, v) = (fx * pc.x / pc.z + cx, fy * pc.y / pc.z + cy);
        let r = fx * BALL_RADIUS / pc.z;
        let slack = 0.01;
        if u - r < -slack || v - r < -slack || u + r > w + slack || v + r > h + slack {
            return true;
        }
        let px = (v as usize).min(shard.h - 1) * shard.w + (u as usize).min(shard.w - 1);
        let frame = &video[f * 3 * plane..(f + 1) * 3 * plane];
        classic && (frame[px] as i32 - frame[2 * plane + px] as i32) < BALL_CONTRAST
    })
}
