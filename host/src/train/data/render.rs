//! Drawing a data config's videos into memory, for batches rendered on demand (validation and
//! test of a procedural source, and its training batches).

use crate::train::model_input;
use trajhost_dataset::sample::generate_sample;
use trajhost_dataset::DataConfig;

/// `[T, 3, H, W]` of the config's clips.
pub fn clip(config: &DataConfig) -> [i64; 4] {
    let c = config;
    [c.frames as i64, 3, c.height as i64, c.width as i64]
}

/// The videos of samples `indices`, back to back, rendered in parallel on libtorch's threads.
pub fn render_videos(config: &DataConfig, indices: &[u64]) -> Vec<u8> {
    model_input::draw_videos(indices.len(), config.video_bytes(), |i, video| {
        generate_sample(config, indices[i], video);
    })
}
