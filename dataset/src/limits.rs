//! The largest clip trajhost handles, one rule for every place a clip's shape comes from: a
//! data config (`data generate`, `--data procedural:`), a checkpoint's recorded shape, a video
//! given to `predict`. Checked before anything is allocated for it.

use std::ops::RangeInclusive;

/// Frames of one clip, and labelled frames past it.
pub const FRAMES: RangeInclusive<i64> = 1..=1024;
pub const HORIZON: RangeInclusive<i64> = 1..=1024;
/// Pixels of a side.
pub const SIDE: RangeInclusive<i64> = 16..=1024;
/// Bytes of one clip as RGB bytes (4× that as the model's floats): 256 MiB is 64 frames of
/// 1024×1024, far past any trajhost preset, and still fits a laptop's memory.
pub const CLIP_BYTES: i64 = 256 << 20;

/// Checks a clip of `[frames, height, width]`: the field at fault and why, if any.
pub fn check_clip(frames: i64, height: i64, width: i64) -> Result<(), (&'static str, String)> {
    if !FRAMES.contains(&frames) {
        return Err((
            "frames",
            format!(
                "must be within {}..={}, got {frames}",
                FRAMES.start(),
                FRAMES.end()
            ),
        ));
    }
    for (field, side) in [("height", height), ("width", width)] {
        if !SIDE.contains(&side) {
            return Err((
                field,
                format!(
                    "resolution must be {}..={} pixels, got {side}",
                    SIDE.start(),
                    SIDE.end()
                ),
            ));
        }
    }
    // Within the ranges above the product fits an i64.
    let bytes = frames * 3 * height * width;
    if bytes > CLIP_BYTES {
        return Err((
            "frames",
            format!(
                "one clip of {frames} frames × 3 × {height} × {width} is {} MiB, more than the {} MiB trajhost handles",
                bytes >> 20,
                CLIP_BYTES >> 20
            ),
        ));
    }
    Ok(())
}

/// Checks labelled frames past the clip.
pub fn check_horizon(horizon: i64) -> Result<(), (&'static str, String)> {
    if HORIZON.contains(&horizon) {
        return Ok(());
    }
    Err((
        "horizon",
        format!(
            "must be within {}..={}, got {horizon}",
            HORIZON.start(),
            HORIZON.end()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impossible_clips_are_refused_naming_the_field() {
        assert!(check_clip(16, 64, 64).is_ok());
        assert!(check_clip(64, 1024, 1024).is_ok());
        assert_eq!(check_clip(0, 64, 64).unwrap_err().0, "frames");
        assert_eq!(check_clip(4_000_000_000, 64, 64).unwrap_err().0, "frames");
        assert_eq!(check_clip(16, 100_000, 64).unwrap_err().0, "height");
        assert_eq!(check_clip(16, 64, 0).unwrap_err().0, "width");
        assert_eq!(check_clip(-1, -1, -1).unwrap_err().0, "frames");
        let (field, why) = check_clip(1024, 1024, 1024).unwrap_err();
        assert_eq!(field, "frames");
        assert!(why.contains("3072 MiB"), "{why}");
        assert!(check_horizon(4_000_000_000).is_err());
        assert!(check_horizon(5).is_ok());
    }
}
