//! The shape of the generation pipeline — how many videos a chunk holds, how many shards are in
//! flight, how many buffers circulate — shared by the generator that runs it and the resource
//! check that sizes it beforehand.

use crate::config::DataConfig;

/// Rendered video bytes handed on at a time: big enough that the per-chunk costs (a rayon
/// fork-join, two channel hops, a write(2)) vanish, small enough to keep memory flat.
const CHUNK_BYTES: usize = 4 << 20;
/// Videos per chunk at least, so that even huge videos keep several workers busy.
const MIN_CHUNK_VIDEOS: usize = 4;
/// Shards streamed at once, a chunk of each in turn. SHA-256 is sequential within a file and
/// costs as much CPU as everything else together, so one hasher per shard in flight is what
/// lets hashing use more than one core; a group of shards also finishes together, so there is
/// no tail of one shard hashed alone.
pub const MAX_LANES: usize = 8;

/// Videos rendered and handed to the writer at a time.
pub fn chunk_videos(cfg: &DataConfig) -> usize {
    (CHUNK_BYTES / cfg.video_bytes().max(1))
        .max(MIN_CHUNK_VIDEOS)
        .min(cfg.checkpoint_interval)
}

/// Shards in flight at once for `cfg`.
pub fn lanes(cfg: &DataConfig) -> usize {
    MAX_LANES.min(cfg.shard_count()).max(1)
}

/// Chunk buffers in circulation: one queued at the writer or at each hasher, and as many
/// again being rendered or in the queues between; recycled, since fresh allocations would
/// cost a page fault per 4 KiB.
pub fn chunk_buffers(cfg: &DataConfig) -> usize {
    2 * lanes(cfg) + 2
}
