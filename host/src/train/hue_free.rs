//! Hue-free colour, a recipe option of the model's input (`colour: hue_free`): each pixel's
//! three channel values `(r, g, b)` become `(r + g + b) / √3`, its component along the grey
//! axis, and `|(r, g, b) − mean · (1, 1, 1)|`, its distance from that axis, and a third channel
//! of zeros (the plugin contract's three). A rotation of hue about the grey axis changes neither
//! number, so a ball of a hue no training clip had (the held-out blue-violet ball) reaches the
//! backbone as a ball of a trained hue and the same brightness and saturation does; what is left
//! is what tells a ball from its background and its shadow: how much brighter or darker it is,
//! and how much more coloured (docs/training.md, "Hue-free colour").
//!
//! Applied after the background is taken out, to the standardised values. CPU batches get it
//! from `planes`, which `model_input` runs on each frame while converting it; other inputs (a GPU
//! batch) from libtorch's ops, `hue_free`. Both give the same values to a float's last bit
//! (libtorch's vectorised square root may round it the other way; tested), and so does the
//! PyTorch package's `hue_free`.

use tch::Tensor;

/// `1 / √3`, in float32 as both paths multiply by it.
const INV_SQRT_3: f32 = 0.577_350_26;

/// `1 / 3` in float32: both paths multiply by it, so that they round alike.
const ONE_THIRD: f32 = 1.0 / 3.0;

/// One pixel's `(r, g, b)` → `(grey-axis component, distance from the grey axis, 0)`.
#[inline]
pub fn pixel([r, g, b]: [f32; 3]) -> [f32; 3] {
    let sum = r + g + b;
    let mean = sum * ONE_THIRD;
    let (dr, dg, db) = (r - mean, g - mean, b - mean);
    [sum * INV_SQRT_3, (dr * dr + dg * dg + db * db).sqrt(), 0.0]
}

/// Every pixel of three colour planes made hue-free (`pixel`), in place: a loop the compiler
/// vectorises.
pub fn planes(red: &mut [f32], green: &mut [f32], blue: &mut [f32]) {
    for ((r, g), b) in red.iter_mut().zip(green.iter_mut()).zip(blue.iter_mut()) {
        [*r, *g, *b] = pixel([*r, *g, *b]);
    }
}

/// `video` `(B, T, 3, H, W)` with every pixel's colour made hue-free (`pixel`), on any device and
/// in any layout.
pub fn hue_free(video: &Tensor) -> Tensor {
    let [r, g, b] = [0, 1, 2].map(|c| video.select(2, c));
    let sum = &r + &g + &b;
    let mean = &sum * f64::from(ONE_THIRD);
    let distance = ((&r - &mean).square() + (&g - &mean).square() + (&b - &mean).square()).sqrt();
    let grey = sum * f64::from(INV_SQRT_3);
    let zeros = distance.zeros_like();
    Tensor::stack(&[grey, distance, zeros], 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// A hue rotation by a third of a turn is a cyclic shift of the channels: every rotation of a
    /// colour gives the same input.
    #[test]
    fn colours_a_hue_rotation_apart_give_the_same_input() {
        for colour in [[0.9f32, -0.3, 0.1], [-1.2, 0.4, 2.0], [0.25, 0.5, -0.75]] {
            let [r, g, b] = colour;
            let seen = pixel(colour);
            for rotated in [[g, b, r], [b, r, g]] {
                let other = pixel(rotated);
                assert!((seen[0] - other[0]).abs() < 1e-6, "{colour:?}");
                assert!((seen[1] - other[1]).abs() < 1e-6, "{colour:?}");
            }
        }
    }

    /// Grey has no distance from the grey axis; brighter grey is larger along it; a coloured
    /// pixel of the same brightness is as bright and farther from the axis.
    #[test]
    fn grey_is_on_the_axis_and_colour_is_off_it() {
        assert_eq!(pixel([0.5, 0.5, 0.5])[1], 0.0);
        assert!(pixel([0.6, 0.6, 0.6])[0] > pixel([0.5, 0.5, 0.5])[0]);
        let red = pixel([1.1, 0.2, 0.2]);
        assert!((red[0] - pixel([0.5, 0.5, 0.5])[0]).abs() < 1e-6);
        assert!(red[1] > 0.7, "{red:?}");
        assert_eq!(red[2], 0.0);
    }

    /// To a float's last bit: libtorch's vectorised square root is not always correctly rounded.
    #[test]
    fn the_tensor_path_gives_the_pixel_paths_values() {
        let video = Tensor::randn([2, 3, 3, 5, 7], (Kind::Float, Device::Cpu)) * 2.0;
        let got = hue_free(&video);
        assert_eq!(got.size(), [2, 3, 3, 5, 7]);
        let values: Vec<f32> =
            Vec::try_from(video.permute([0, 1, 3, 4, 2]).flatten(0, -1)).unwrap();
        let expected: Vec<f32> = values
            .chunks(3)
            .flat_map(|p| pixel([p[0], p[1], p[2]]))
            .collect();
        let got: Vec<f32> = Vec::try_from(got.permute([0, 1, 3, 4, 2]).flatten(0, -1)).unwrap();
        for (got, expected) in got.iter().zip(&expected) {
            assert!(
                (got - expected).abs() <= expected.abs() * 1e-6,
                "{got} {expected}"
            );
        }
    }
}
