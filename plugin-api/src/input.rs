//! What a backbone is fed: every pixel in [0, 1] standardised the same way by the host,
//! `(pixel − PIXEL_MEAN) / PIXEL_STD`, all channels alike, so the values lie in
//! [`INPUT_RANGE`]. Fixed rather than measured per dataset, so a trained model reads any
//! dataset's videos the same way. With raw [0, 1] input MAGVIT's `cpu` preset sat at chance for
//! its first steps, and per-channel statistics did no better than these fixed ones
//! (`bench/python/ablation.py`; the numbers are in docs/training.md).
//!
//! Here rather than in the host because it is part of the contract: the conformance kit probes
//! backbones with exactly these values.

pub const PIXEL_MEAN: f64 = 0.5;
pub const PIXEL_STD: f64 = 0.25;

/// The lowest and highest value a backbone is fed: a black and a white pixel.
pub const INPUT_RANGE: (f64, f64) = (-PIXEL_MEAN / PIXEL_STD, (1.0 - PIXEL_MEAN) / PIXEL_STD);
