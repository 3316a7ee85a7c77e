//! What a generation needs against what the machine has, checked before anything is allocated
//! or written: memory for the chunk buffers and one shard's labels that the pipeline holds,
//! disk space for the shard files still to write, and a worker count the machine can run.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::config::DataConfig;
use crate::error::{Error, Result};
use crate::pipeline::{chunk_buffers, chunk_videos, lanes};
use crate::stream::ALIGN;
use crate::trajectory::PARAM_FIELDS;

/// Room for each shard file's safetensors header (about 1 kB in practice).
const SHARD_HEADER_BYTES: u64 = 4096;

/// Worker threads per core beyond which more only cost memory, and the most ever started.
pub const WORKERS_PER_CORE: usize = 4;
pub const MAX_WORKERS: usize = 256;

/// Bytes of one sample's labels in a shard: label, index, (T + H) × 3 positions,
/// intrinsics, extrinsics and parameters.
fn label_bytes(cfg: &DataConfig) -> Option<u64> {
    let positions = (cfg.total_frames() as u64).checked_mul(3 * 4)?;
    positions.checked_add(1 + 8 + 9 * 4 + 16 * 4 + PARAM_FIELDS.len() as u64 * 4)
}

/// Bytes of one sample in a shard (video and labels); `None` past 2^64.
pub fn sample_bytes(cfg: &DataConfig) -> Option<u64> {
    let video = (cfg.frames as u64)
        .checked_mul(3)?
        .checked_mul(cfg.height as u64)?
        .checked_mul(cfg.width as u64)?;
    video.checked_add(label_bytes(cfg)?)
}

/// Samples in the largest shard.
fn shard_samples(cfg: &DataConfig) -> u64 {
    cfg.checkpoint_interval.min(cfg.samples) as u64
}

/// Bytes of one sample's plan while its shard is rendered: its world positions (T + H rows of
/// three f64), its labels, and about a kilobyte of camera, random stream and bookkeeping.
fn plan_bytes(cfg: &DataConfig) -> Option<u64> {
    let world = (cfg.total_frames() as u64).checked_mul(3 * 8)?;
    world.checked_add(label_bytes(cfg)?)?.checked_add(1024)
}

/// Memory generation holds at its peak: the chunk buffers videos are streamed through, and for
/// each shard in flight (a lane) the plans of its samples and its label arrays, twice over (as
/// built, and as the file's first bytes queued for the writer). Nothing grows with the sample
/// count.
pub fn generation_memory(cfg: &DataConfig) -> Option<u64> {
    let n = shard_samples(cfg);
    // A buffer holds a chunk of videos or a shard's header and labels, and room to align it.
    let chunk = (chunk_videos(cfg) as u64).checked_mul(cfg.video_bytes() as u64)?;
    let head = n
        .checked_mul(label_bytes(cfg)?)?
        .checked_add(SHARD_HEADER_BYTES)?;
    let buffer = chunk.max(head).checked_add(2 * ALIGN as u64)?;
    let chunks = (chunk_buffers(cfg) as u64).checked_mul(buffer)?;
    let per_sample = plan_bytes(cfg)?.checked_add(label_bytes(cfg)?.checked_mul(3)?)?;
    let labels = n.checked_mul(per_sample)?.checked_mul(lanes(cfg) as u64)?;
    chunks.checked_add(labels)
}

/// Bytes of the whole dataset on disk.
pub fn dataset_bytes(cfg: &DataConfig) -> Option<u64> {
    (cfg.samples as u64)
        .checked_mul(sample_bytes(cfg)?)?
        .checked_add((cfg.shard_count() as u64).checked_mul(SHARD_HEADER_BYTES)?)
}

/// `1.5 GiB`-style sizes.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Memory this process may still use: `MemAvailable` of /proc/meminfo, or less where its
/// cgroup (a Slurm job, a container) sets a lower `memory.max`; `None` where neither is known.
pub fn memory_available() -> Option<(u64, &'static str)> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let available = meminfo.lines().find_map(|line| {
        let kib = line
            .strip_prefix("MemAvailable:")?
            .trim()
            .strip_suffix("kB")?;
        kib.trim().parse::<u64>().ok().map(|k| k * 1024)
    })?;
    let cgroup = cgroup_memory_left();
    Some(match cgroup {
        Some(left) if left < available => (left, "the cgroup's memory.max less memory.current"),
        _ => (available, "MemAvailable in /proc/meminfo"),
    })
}

/// `memory.max - memory.current` of this process's cgroup (v2), when it has a limit.
fn cgroup_memory_left() -> Option<u64> {
    let membership = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = membership.lines().find_map(|l| l.strip_prefix("0::"))?;
    let dir = Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'));
    let read = |name: &str| -> Option<u64> {
        std::fs::read_to_string(dir.join(name))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    // "max" (no limit) does not parse.
    let max = read("memory.max")?;
    Some(max.saturating_sub(read("memory.current").unwrap_or(0)))
}

/// Free bytes for an unprivileged writer on the filesystem holding `dir`; `None` where it
/// cannot be told (a filesystem that reports no size at all, as /proc or some FUSE mounts do).
pub fn disk_available(dir: &Path) -> Option<u64> {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).ok()?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid C string and `stat` a writable statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &mut stat) } != 0 || stat.f_blocks == 0 {
        return None;
    }
    Some((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}

/// The nearest folder at or above `path` that exists (the output folder may not yet).
fn existing_ancestor(path: &Path) -> &Path {
    path.ancestors()
        .find(|p| p.is_dir())
        .unwrap_or(Path::new("."))
}

/// Bytes of the shard files already in `out` (kept on resume, or deleted by `--force`).
fn shard_bytes_present(out: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(out) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("shard-") && name.ends_with(".safetensors")
        })
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// `3.7 GiB (3934000000 bytes)`: readable, and exact for comparing with `df -B1`.
fn both(bytes: u64) -> String {
    format!("{} ({bytes} bytes)", human_bytes(bytes))
}

/// What a generation into a folder needs and what the machine has, as checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Needs {
    /// Bytes of the whole dataset (shard headers counted at most 4 KiB each).
    pub dataset: u64,
    /// Bytes still to write: the dataset less the shard files already in the folder.
    pub disk: u64,
    /// Free bytes on the file system of `folder`, where it can be told.
    pub disk_free: Option<u64>,
    /// The folder whose file system was asked (the output folder or its nearest existing
    /// parent).
    pub folder: PathBuf,
    pub memory: u64,
}

impl fmt::Display for Needs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "needs {} of disk", both(self.disk))?;
        if self.disk != self.dataset {
            write!(f, " (of {} in all)", human_bytes(self.dataset))?;
        }
        match self.disk_free {
            Some(free) => write!(
                f,
                ", {} free on the disk of {}",
                both(free),
                self.folder.display()
            )?,
            None => write!(f, ", free space of {} unknown", self.folder.display())?,
        }
        write!(f, "; {} of memory", human_bytes(self.memory))
    }
}

/// Refuses a dataset whose files do not fit in `free` bytes (`None`: unknown, not refused),
/// naming the folder, the bytes needed and the bytes free; else the bytes still to write.
fn check_disk(
    cfg: &DataConfig,
    out: &Path,
    folder: &Path,
    free: Option<u64>,
    present: u64,
    shape: &str,
) -> Result<u64> {
    let needed = dataset_bytes(cfg).map(|t| t.saturating_sub(present));
    match (needed, free) {
        (Some(needed), Some(free)) if needed <= free => Ok(needed),
        (Some(needed), None) => Ok(needed),
        (needed, free) => Err(Error::format(
            out,
            format!(
                "the dataset needs {} of disk ({} samples of {shape}) but only {} is free on the disk of {}; lower samples, frames, width or height, free some space, or choose another folder",
                needed.map_or("more than 2^64 bytes".into(), both),
                cfg.samples,
                free.map_or("an unknown amount".into(), both),
                folder.display()
            ),
        )),
    }
}

/// Refuses, with what is needed and what there is, a dataset whose shards do not fit in memory
/// or whose files do not fit on the disk of `out`; else says what it needs.
pub fn check_resources(cfg: &DataConfig, out: &Path) -> Result<Needs> {
    let per_sample = sample_bytes(cfg).ok_or_else(|| {
        Error::format(
            out,
            "one video of frames × 3 × height × width bytes is more than 2^64 bytes: lower frames",
        )
    })?;
    let shape = format!(
        "{} frames of {}×{} ({} per sample)",
        cfg.frames,
        cfg.width,
        cfg.height,
        human_bytes(per_sample)
    );
    let n = shard_samples(cfg);
    let memory = generation_memory(cfg);
    let available = memory_available();
    let fits = match (memory, available) {
        (Some(m), Some((a, _))) => m <= a,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if !fits {
        let needed = memory.map_or("more than 2^64 bytes".into(), human_bytes);
        let available = available.map_or("an unknown amount".into(), |(a, source)| {
            format!("{} ({source})", human_bytes(a))
        });
        return Err(Error::format(
            out,
            format!(
                "generating needs {needed} of memory ({} buffers of {} videos, and the labels of {} shards of {n} videos, checkpoint_interval {}, of {shape}) but only {available} is available; lower checkpoint_interval, frames, width or height",
                chunk_buffers(cfg),
                chunk_videos(cfg),
                lanes(cfg),
                cfg.checkpoint_interval,
            ),
        ));
    }
    let folder = existing_ancestor(out);
    let free = disk_available(folder);
    let disk = check_disk(cfg, out, folder, free, shard_bytes_present(out), &shape)?;
    Ok(Needs {
        dataset: dataset_bytes(cfg).expect("checked by check_disk"),
        disk,
        disk_free: free,
        folder: folder.to_path_buf(),
        memory: memory.expect("fits"),
    })
}

/// The most worker threads worth starting here: `WORKERS_PER_CORE` per core, at most
/// `MAX_WORKERS`.
pub fn max_workers() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.saturating_mul(WORKERS_PER_CORE).min(MAX_WORKERS)
}

/// `requested` workers capped at [`max_workers`], at least 1.
pub fn usable_workers(requested: usize) -> usize {
    requested.clamp(1, max_workers())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_add_up_and_overflow_is_none() {
        let cfg = DataConfig::tiny();
        // 8 frames of 3 × 32 × 32, plus (8 + 8) × 3 positions and the rest of the labels.
        let labels = (8 + cfg.horizon as u64) * 12 + 1 + 8 + 36 + 64 + 19 * 4;
        assert_eq!(sample_bytes(&cfg), Some(8 * 3 * 32 * 32 + labels));
        // Tiny: 4 shards of 16 videos, all in flight, one chunk each and 10 buffers; a plan
        // adds the world positions and 1 KiB.
        let plan = (8 + cfg.horizon as u64) * 24 + labels + 1024;
        assert_eq!(
            (chunk_videos(&cfg), lanes(&cfg), chunk_buffers(&cfg)),
            (16, 4, 10)
        );
        assert_eq!(
            generation_memory(&cfg),
            Some(10 * (16 * 8 * 3 * 32 * 32 + 2 * 4096) + 4 * 16 * (plan + 3 * labels))
        );
        let huge = DataConfig {
            frames: usize::MAX / 2,
            ..cfg
        };
        assert_eq!(sample_bytes(&huge), None);
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 << 29), "1.5 GiB");
    }

    #[test]
    fn workers_are_capped() {
        assert_eq!(usable_workers(0), 1);
        assert_eq!(usable_workers(1_000_000), max_workers());
        assert!(max_workers() <= MAX_WORKERS);
    }

    #[test]
    fn memory_does_not_grow_with_the_sample_count() {
        let at = |samples| {
            generation_memory(&DataConfig {
                samples,
                ..DataConfig::default_config()
            })
        };
        // Once 8 shards are in flight, more samples cost no more memory.
        assert!(at(10_000) < at(16_000));
        assert_eq!(at(16_000), at(1_000_000));
        assert_eq!(at(1_000_000), at(1_000_000_000));
        let million = DataConfig {
            samples: 1_000_000,
            ..DataConfig::default_config()
        };
        // 18 chunks of 10 videos of 393 kB, and 8 shards of 2000 samples' labels: 145 MB.
        assert!(generation_memory(&million).unwrap() < 150 << 20);
    }

    #[test]
    fn a_dataset_larger_than_the_free_space_is_refused_naming_folder_and_bytes() {
        let cfg = DataConfig {
            samples: 1_000_000,
            ..DataConfig::default_config()
        };
        let needed = dataset_bytes(&cfg).unwrap();
        // 1 000 000 videos of 393 216 bytes plus labels, and 500 headers of at most 4 KiB.
        assert!(
            (393_000_000_000..400_000_000_000).contains(&needed),
            "{needed}"
        );
        let (out, folder) = (Path::new("/data/new/set"), Path::new("/data"));
        let free = 50_000_000_000;
        let err = check_disk(&cfg, out, folder, Some(free), 0, "shape")
            .unwrap_err()
            .to_string();
        for part in [
            "/data/new/set",
            "disk of /data",
            &format!("({needed} bytes)"),
            "(50000000000 bytes) is free",
            "1000000 samples",
        ] {
            assert!(err.contains(part), "{part:?} not in: {err}");
        }
        // Exactly enough fits; shard files already present (a resume) count as written.
        assert_eq!(
            check_disk(&cfg, out, folder, Some(needed), 0, "").unwrap(),
            needed
        );
        let present = needed - free;
        assert_eq!(
            check_disk(&cfg, out, folder, Some(free), present, "").unwrap(),
            free
        );
        assert!(check_disk(&cfg, out, folder, Some(free), present - 1, "").is_err());
        // Unknown free space is not a refusal; an overflowing size is.
        assert_eq!(check_disk(&cfg, out, folder, None, 0, "").unwrap(), needed);
        let huge = DataConfig {
            samples: usize::MAX,
            ..cfg
        };
        let err = check_disk(&huge, out, folder, None, 0, "").unwrap_err();
        assert!(err.to_string().contains("more than 2^64 bytes"), "{err}");
    }
}
