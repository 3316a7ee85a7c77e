//! The curve-fit limit: how well the future position can be predicted from the *true*
//! positions of the input frames by someone who also knows the true class. Each class's curve
//! family is fitted by least squares to the T positions (time = frame index), then evaluated
//! `predict_future` frames after the last one:
//!
//! | class | per axis x(t) = |
//! |---|---|
//! | linear | a + b·t |
//! | parabolic | a + b·t + c·t² |
//! | circular | a + c·cos ωt + d·sin ωt |
//! | helical | a + b·t + c·cos ωt + d·sin ωt |
//!
//! with one angular speed ω shared by the three axes (the projection of a circle or helix onto
//! any axis is a sinusoid of the same frequency), found by a grid search then a finer one around
//! the best. The positions carry the dataset's per-frame jitter, so the limit is not 0: a model
//! that sees only pixels can approach it but hardly beat it.

use super::data::SplitData;
use trajhost_dataset::trajectory::Class;

/// ω grid in radians per frame: up to a quarter turn per frame, past any class's speed.
const OMEGA_MIN: f64 = 0.005;
const OMEGA_MAX: f64 = std::f64::consts::FRAC_PI_2;
const COARSE_STEPS: usize = 400;
const FINE_STEPS: usize = 40;

pub struct Limit {
    /// Mean over samples and axes of the squared error.
    pub mse: f64,
    /// The same per class (0 for a class with no sample).
    pub per_class: [f64; 4],
}

/// The limit on `split`'s samples.
pub fn limit(split: &SplitData, predict_future: usize) -> Limit {
    let frames = split.track.size()[1] as usize;
    let labels = Vec::<i64>::try_from(&split.labels).expect("int64 labels");
    let track = Vec::<f32>::try_from(split.track.flatten(0, -1)).expect("float positions");
    let target = Vec::<f32>::try_from(split.target.flatten(0, -1)).expect("float target");
    let mut sums = [0.0f64; 4];
    let mut counts = [0usize; 4];
    for (i, &label) in labels.iter().enumerate() {
        let positions: Vec<[f64; 3]> = (0..frames)
            .map(|t| std::array::from_fn(|a| f64::from(track[(i * frames + t) * 3 + a])))
            .collect();
        let class = Class::from_index(label as u8).expect("labels are class indices");
        let predicted = extrapolate(class, &positions, predict_future);
        let error: f64 = (0..3)
            .map(|a| (predicted[a] - f64::from(target[i * 3 + a])).powi(2))
            .sum::<f64>()
            / 3.0;
        sums[label as usize] += error;
        counts[label as usize] += 1;
    }
    let n = counts.iter().sum::<usize>().max(1) as f64;
    Limit {
        mse: sums.iter().sum::<f64>() / n,
        per_class: std::array::from_fn(|c| sums[c] / counts[c].max(1) as f64),
    }
}

/// The class's best-fitting curve through `positions` (one per frame), `ahead` frames after the
/// last one.
pub fn extrapolate(class: Class, positions: &[[f64; 3]], ahead: usize) -> [f64; 3] {
    let at = (positions.len() - 1 + ahead) as f64;
    match class {
        Class::Linear => fit(positions, at, &|t| vec![1.0, t]).1,
        Class::Parabolic => fit(positions, at, &|t| vec![1.0, t, t * t]).1,
        Class::Circular | Class::Helical => {
            let drift = class == Class::Helical;
            let basis = |omega: f64| {
                move |t: f64| {
                    let mut row = vec![1.0, (omega * t).cos(), (omega * t).sin()];
                    if drift {
                        row.push(t);
                    }
                    row
                }
            };
            let search = |lo: f64, hi: f64, steps: usize| {
                (0..=steps)
                    .map(|k| lo + (hi - lo) * k as f64 / steps as f64)
                    .map(|omega| (fit(positions, at, &basis(omega)), omega))
                    .min_by(|a, b| a.0 .0.total_cmp(&b.0 .0))
                    .expect("a non-empty grid")
            };
            let step = (OMEGA_MAX - OMEGA_MIN) / COARSE_STEPS as f64;
            let (_, coarse) = search(OMEGA_MIN, OMEGA_MAX, COARSE_STEPS);
            let fine_step = 2.0 * step / FINE_STEPS as f64;
            let (_, fine) = search(coarse - step, coarse + step, FINE_STEPS);
            // Golden-section search inside the fine grid's best cell, where the residual is
            // unimodal in ω, down to a negligible width.
            let residual = |omega: f64| fit(positions, at, &basis(omega)).0;
            let (mut lo, mut hi) = (fine - fine_step, fine + fine_step);
            let ratio = (5f64.sqrt() - 1.0) / 2.0;
            while hi - lo > 1e-9 {
                let (a, b) = (hi - ratio * (hi - lo), lo + ratio * (hi - lo));
                if residual(a) < residual(b) {
                    hi = b;
                } else {
                    lo = a;
                }
            }
            fit(positions, at, &basis((lo + hi) / 2.0)).1
        }
    }
}

/// Least squares of every axis on the basis functions `row(t)`: (sum of squared residuals,
/// the fitted curve at time `at`).
fn fit(positions: &[[f64; 3]], at: f64, row: &dyn Fn(f64) -> Vec<f64>) -> (f64, [f64; 3]) {
    let k = row(0.0).len();
    let rows: Vec<Vec<f64>> = (0..positions.len()).map(|t| row(t as f64)).collect();
    // Normal equations, with a tiny ridge so that a degenerate basis (ω ≈ 0) stays solvable.
    let mut gram = vec![vec![0.0; k]; k];
    for r in &rows {
        for i in 0..k {
            for j in 0..k {
                gram[i][j] += r[i] * r[j];
            }
        }
    }
    for (i, line) in gram.iter_mut().enumerate() {
        line[i] += 1e-9;
    }
    let query = row(at);
    let mut residual = 0.0;
    let mut predicted = [0.0; 3];
    for axis in 0..3 {
        let rhs: Vec<f64> = (0..k)
            .map(|i| {
                rows.iter()
                    .zip(positions)
                    .map(|(r, p)| r[i] * p[axis])
                    .sum()
            })
            .collect();
        let coef = solve(gram.clone(), rhs);
        for (r, p) in rows.iter().zip(positions) {
            let fitted: f64 = r.iter().zip(&coef).map(|(a, c)| a * c).sum();
            residual += (fitted - p[axis]).powi(2);
        }
        predicted[axis] = query.iter().zip(&coef).map(|(a, c)| a * c).sum();
    }
    (residual, predicted)
}

/// Gaussian elimination with partial pivoting on a small dense system.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
            .expect("rows left");
        a.swap(col, pivot);
        b.swap(col, pivot);
        let (upper, lower) = a.split_at_mut(col + 1);
        let pivot_row = &upper[col];
        for (offset, row) in lower.iter_mut().enumerate() {
            let factor = row[col] / pivot_row[col];
            for (x, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                *x -= factor * p;
            }
            b[col + 1 + offset] -= factor * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for r in (0..n).rev() {
        let tail: f64 = (r + 1..n).map(|c| a[r][c] * x[c]).sum();
        x[r] = (b[r] - tail) / a[r][r];
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(f: impl Fn(f64) -> [f64; 3], frames: usize) -> Vec<[f64; 3]> {
        (0..frames).map(|t| f(t as f64)).collect()
    }

    fn close(a: [f64; 3], b: [f64; 3]) -> bool {
        a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-6)
    }

    #[test]
    fn each_family_extrapolates_its_own_noise_free_curve_exactly() {
        let line = |t: f64| [0.1 + 0.02 * t, -0.3 * t / 10.0, 0.5];
        let parabola = |t: f64| [0.01 * t, 0.2 - 0.001 * t * t, 0.03 * t];
        let circle = |t: f64| {
            [
                0.7 * (0.12 * t + 1.0).cos(),
                0.2,
                0.7 * (0.12 * t + 1.0).sin(),
            ]
        };
        let helix = |t: f64| {
            [
                0.5 * (0.23 * t).cos() + 0.01 * t,
                0.5 * (0.23 * t).sin(),
                0.02 * t,
            ]
        };
        for (class, f) in [
            (Class::Linear, &line as &dyn Fn(f64) -> [f64; 3]),
            (Class::Parabolic, &parabola),
            (Class::Circular, &circle),
            (Class::Helical, &helix),
        ] {
            let got = extrapolate(class, &curve(f, 32), 5);
            assert!(close(got, f(36.0)), "{class:?}: {got:?} vs {:?}", f(36.0));
        }
    }

    #[test]
    fn the_wrong_family_extrapolates_worse() {
        let circle = |t: f64| [0.7 * (0.12 * t).cos(), 0.0, 0.7 * (0.12 * t).sin()];
        let truth = circle(36.0);
        let error = |p: [f64; 3]| (0..3).map(|a| (p[a] - truth[a]).powi(2)).sum::<f64>();
        let as_line = extrapolate(Class::Linear, &curve(circle, 32), 5);
        let as_circle = extrapolate(Class::Circular, &curve(circle, 32), 5);
        assert!(error(as_circle) < 1e-8 && error(as_line) > 1e-2);
    }
}
