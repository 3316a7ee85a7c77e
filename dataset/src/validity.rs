//! Per-class geometric validity of a labelled trajectory (uniformly timed frames):
//! linear = constant velocity (zero curvature); parabolic = constant acceleration;
//! circular = constant radius in a plane; helical = constant radius about an axis and constant
//! pitch. Residuals are RMS 3-D distances, compared with a tolerance derived from the jitter.

use glam::{DMat3, DVec2, DVec3};

use crate::camera::NORM_SCALE;
use crate::trajectory::{Class, MAX_SCALE};

/// Curved classes must deviate from the best straight line by this many tolerances, so a
/// sample cannot pass as a class it does not visibly look like.
const CURVATURE_FACTOR: f64 = 2.0;

/// Tolerance on the RMS 3-D residual in label units: 1.5× the expected RMS of the largest
/// jitter (σ = noise_level · MAX_SCALE per axis, i.e. √3·σ in 3-D), plus float32 slack.
pub fn tolerance(noise_level: f64) -> f64 {
    let sigma = noise_level * MAX_SCALE / NORM_SCALE;
    1.5 * 3f64.sqrt() * sigma + 2e-3
}

/// Checks `points` (one per frame) against `class`; `Err` says which property failed.
pub fn check_trajectory(class: Class, points: &[DVec3], tol: f64) -> Result<(), String> {
    if points.len() < 6 {
        return Err(format!(
            "only {} frames, need 6 for a shape check",
            points.len()
        ));
    }
    let straight = poly_rms(points, 1);
    let curved = |what: &str| {
        if straight > CURVATURE_FACTOR * tol {
            Ok(())
        } else {
            Err(format!(
                "{what} is nearly straight (line residual {straight:.4} ≤ {:.4})",
                CURVATURE_FACTOR * tol
            ))
        }
    };
    let within = |what: &str, rms: f64| {
        if rms <= tol {
            Ok(())
        } else {
            Err(format!(
                "{what} residual {rms:.4} exceeds tolerance {tol:.4}"
            ))
        }
    };
    match class {
        Class::Linear => within("constant-velocity line", straight),
        Class::Parabolic => {
            within("constant-acceleration parabola", poly_rms(points, 2))?;
            curved("parabola")
        }
        Class::Circular => {
            within("planar constant-radius circle", circle_rms(points))?;
            curved("circle")
        }
        Class::Helical => {
            let (rms, travel) = helix_fit(points);
            within("constant-radius constant-pitch helix", rms)?;
            curved("helix")?;
            if travel > CURVATURE_FACTOR * tol {
                Ok(())
            } else {
                Err(format!("helix has no travel along its axis ({travel:.4})"))
            }
        }
    }
}

/// RMS 3-D residual of a per-coordinate least-squares polynomial in the frame number.
fn poly_rms(points: &[DVec3], degree: usize) -> f64 {
    let n = points.len();
    let mid = (n as f64 - 1.0) / 2.0;
    let basis = |k: usize| {
        let t = (k as f64 - mid) / n as f64;
        [1.0, t, t * t]
    };
    let m = degree + 1;
    let mut ata = DMat3::ZERO;
    let mut atb = [DVec3::ZERO; 3];
    for (k, &p) in points.iter().enumerate() {
        let b = basis(k);
        for i in 0..m {
            for j in 0..m {
                ata.col_mut(j)[i] += b[i] * b[j];
            }
            atb[i] += b[i] * p;
        }
    }
    if m == 2 {
        // Keep the 3×3 solve non-singular for the linear fit.
        ata.col_mut(2)[2] = 1.0;
    }
    let inv = ata.inverse();
    let coef: Vec<DVec3> = (0..3)
        .map(|i| (0..m).map(|j| atb[j] * inv.col(j)[i]).sum())
        .collect();
    let sq: f64 = points
        .iter()
        .enumerate()
        .map(|(k, &p)| {
            let b = basis(k);
            let fit: DVec3 = (0..m).map(|i| coef[i] * b[i]).sum();
            (p - fit).length_squared()
        })
        .sum();
    (sq / n as f64).sqrt()
}

fn centroid(points: &[DVec3]) -> DVec3 {
    points.iter().copied().sum::<DVec3>() / points.len() as f64
}

/// Unit eigenvector of the smallest eigenvalue of the scatter matrix of `vectors`.
fn least_direction(vectors: impl Iterator<Item = DVec3>) -> DVec3 {
    let mut m = DMat3::ZERO;
    for v in vectors {
        m += DMat3::from_cols(v * v.x, v * v.y, v * v.z);
    }
    // Inverse iteration on a slightly shifted matrix converges to the smallest eigenvector.
    let shift = m.col(0).x.min(m.col(1).y).min(m.col(2).z) * 1e-9 + 1e-12;
    let inv = (m + DMat3::IDENTITY * shift).inverse();
    let mut v = DVec3::new(0.577, 0.577, 0.577);
    for _ in 0..50 {
        let next = inv * v;
        if !next.is_finite() || next.length() == 0.0 {
            break;
        }
        v = next.normalize();
    }
    v
}

/// Kasa algebraic circle fit: (centre, radius).
fn fit_circle(points: &[DVec2]) -> (DVec2, f64) {
    // Minimise Σ (x² + y² + D x + E y + F)² (centred for conditioning).
    let c = points.iter().copied().sum::<DVec2>() / points.len() as f64;
    let mut ata = DMat3::ZERO;
    let mut atb = DVec3::ZERO;
    for &p in points {
        let q = p - c;
        let row = DVec3::new(q.x, q.y, 1.0);
        ata += DMat3::from_cols(row * row.x, row * row.y, row * row.z);
        atb += row * -(q.length_squared());
    }
    let s = ata.inverse() * atb;
    let centre = DVec2::new(-s.x / 2.0, -s.y / 2.0);
    let radius = (centre.length_squared() - s.z).max(0.0).sqrt();
    (centre + c, radius)
}

/// Each point's 2-D coordinates in the plane through `c` orthogonal to `normal`.
fn in_plane(points: &[DVec3], c: DVec3, normal: DVec3) -> Vec<DVec2> {
    let u = normal.any_orthonormal_vector();
    let w = normal.cross(u);
    points
        .iter()
        .map(|&p| DVec2::new((p - c).dot(u), (p - c).dot(w)))
        .collect()
}

/// Plane + circle fit; RMS of the combined off-plane and radial residuals.
fn circle_rms(points: &[DVec3]) -> f64 {
    let c = centroid(points);
    let normal = least_direction(points.iter().map(|&p| p - c));
    let flat = in_plane(points, c, normal);
    let (centre, radius) = fit_circle(&flat);
    let sq: f64 = points
        .iter()
        .zip(&flat)
        .map(|(&p, &q)| (p - c).dot(normal).powi(2) + ((q - centre).length() - radius).powi(2))
        .sum();
    (sq / points.len() as f64).sqrt()
}

/// Helix fit: the axis is orthogonal to every second difference (the axial motion is linear in
/// time), the projection onto the orthogonal plane is a circle, and the axial coordinate is
/// linear in the unwrapped angle (constant pitch). Returns (RMS residual, axial travel).
fn helix_fit(points: &[DVec3]) -> (f64, f64) {
    let n = points.len();
    let lag = (n / 8).max(1);
    let axis = least_direction(
        (lag..n - lag).map(|k| points[k + lag] - 2.0 * points[k] + points[k - lag]),
    );
    let c = centroid(points);
    let flat = in_plane(points, c, axis);
    let (centre, radius) = fit_circle(&flat);
    let mut angles = Vec::with_capacity(n);
    let mut prev = 0.0;
    for (k, q) in flat.iter().enumerate() {
        let d = *q - centre;
        let mut a = d.y.atan2(d.x);
        if k > 0 {
            while a - prev > std::f64::consts::PI {
                a -= std::f64::consts::TAU;
            }
            while a - prev < -std::f64::consts::PI {
                a += std::f64::consts::TAU;
            }
        }
        prev = a;
        angles.push(a);
    }
    let heights: Vec<f64> = points.iter().map(|&p| (p - c).dot(axis)).collect();
    // Least-squares h = α + β·θ.
    let mean_a = angles.iter().sum::<f64>() / n as f64;
    let mean_h = heights.iter().sum::<f64>() / n as f64;
    let (mut sab, mut saa) = (0.0, 0.0);
    for (a, h) in angles.iter().zip(&heights) {
        sab += (a - mean_a) * (h - mean_h);
        saa += (a - mean_a).powi(2);
    }
    let beta = if saa > 0.0 { sab / saa } else { 0.0 };
    let sq: f64 = (0..n)
        .map(|k| {
            let axial = heights[k] - mean_h - beta * (angles[k] - mean_a);
            let radial = (flat[k] - centre).length() - radius;
            axial * axial + radial * radial
        })
        .sum();
    let travel = (beta * (angles[n - 1] - angles[0])).abs();
    ((sq / n as f64).sqrt(), travel)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(class: Class) -> Vec<DVec3> {
        (0..40)
            .map(|k| {
                let t = k as f64 / 39.0;
                let a = 5.0 * t + 0.3;
                let tilt = DMat3::from_rotation_x(0.7) * DMat3::from_rotation_z(0.4);
                tilt * match class {
                    Class::Linear => DVec3::new(-1.0, 0.2, 0.1) + DVec3::new(2.0, 0.5, -0.3) * t,
                    Class::Parabolic => DVec3::new(2.0 * t, 0.3, 3.0 * t - 3.0 * t * t),
                    Class::Circular => DVec3::new(a.cos(), a.sin(), 0.0) * 0.8,
                    Class::Helical => {
                        DVec3::new(0.6 * (2.0 * a).cos(), 0.6 * (2.0 * a).sin(), 1.2 * t)
                    }
                }
            })
            .collect()
    }

    #[test]
    fn each_class_passes_its_own_check_and_fails_the_others() {
        let tol = 0.01;
        for class in Class::ALL {
            let pts = curve(class);
            assert_eq!(check_trajectory(class, &pts, tol), Ok(()), "{class:?}");
            for other in Class::ALL.into_iter().filter(|&o| o != class) {
                // A parabola arc is well approximated by a helix/circle only loosely: it fails.
                assert!(
                    check_trajectory(other, &pts, tol).is_err(),
                    "{class:?} data passed as {other:?}"
                );
            }
        }
    }

    #[test]
    fn a_kinked_sample_fails() {
        let mut pts = curve(Class::Linear);
        for p in &mut pts[20..] {
            *p += DVec3::new(0.0, 0.3, 0.0);
        }
        let err = check_trajectory(Class::Linear, &pts, 0.01).unwrap_err();
        assert!(err.contains("line"), "{err}");
    }
}
