//! What a generation needs against what the machine has, checked before anything is allocated
//! or written: memory for the two shard buffers the pipeline holds, disk space for the shard
//! files still to write, and a worker count the machine can run.

use std::path::Path;

use crate::config::DataConfig;
use crate::error::{Error, Result};
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

/// Memory generation holds at its peak: the shard being rendered, the one being written, and
/// the rendered shard's labels before they are copied in.
pub fn generation_memory(cfg: &DataConfig) -> Option<u64> {
    let n = shard_samples(cfg);
    let shard = n.checked_mul(sample_bytes(cfg)?)?;
    shard
        .checked_mul(2)?
        .checked_add(n.checked_mul(label_bytes(cfg)?)?)
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

/// Refuses, with what is needed and what there is, a dataset whose shards do not fit in memory
/// or whose files do not fit on the disk of `out`.
pub fn check_resources(cfg: &DataConfig, out: &Path) -> Result<()> {
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
    if let Some((available, source)) = memory_available() {
        if memory.is_none_or(|m| m > available) {
            let needed = memory.map_or("more than 2^64 bytes".into(), human_bytes);
            return Err(Error::format(
                out,
                format!(
                    "generating needs {needed} of memory (two shards of {n} videos, checkpoint_interval {}, of {shape}) but only {} is available ({source}); lower checkpoint_interval, frames, width or height",
                    cfg.checkpoint_interval,
                    human_bytes(available)
                ),
            ));
        }
    }
    let folder = existing_ancestor(out);
    if let Some(free) = disk_available(folder) {
        let total = dataset_bytes(cfg);
        let needed = total.map(|t| t.saturating_sub(shard_bytes_present(out)));
        if needed.is_none_or(|n| n > free) {
            let needed = needed.map_or("more than 2^64 bytes".into(), human_bytes);
            return Err(Error::format(
                out,
                format!(
                    "the dataset needs {needed} of disk ({} samples of {shape}) but only {} is free on the disk of {}; lower samples, frames, width or height, or choose another --out",
                    cfg.samples,
                    human_bytes(free),
                    folder.display()
                ),
            ));
        }
    }
    Ok(())
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
        assert_eq!(
            generation_memory(&cfg),
            Some(16 * (2 * sample_bytes(&cfg).unwrap() + labels))
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
}
