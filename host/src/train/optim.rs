//! AdamW written over tensors in the host: tch keeps its optimisers' moments out of reach,
//! and an exact resume needs them in the checkpoint.

use crate::config::TrainConfig;
use anyhow::{bail, Result};
use std::collections::HashMap;
use tch::Tensor;

pub const BETA1: f64 = 0.9;
pub const BETA2: f64 = 0.999;
pub const EPSILON: f64 = 1e-8;

pub struct AdamW {
    params: Vec<(String, Tensor)>,
    /// First and second moments, one pair per parameter, same order.
    moments: Vec<(Tensor, Tensor)>,
    /// Optimiser steps taken so far (for bias correction).
    pub step: i64,
    pub weight_decay: f64,
}

impl AdamW {
    pub fn new(params: Vec<(String, Tensor)>, weight_decay: f64) -> Self {
        let moments = params
            .iter()
            .map(|(_, p)| (p.zeros_like(), p.zeros_like()))
            .collect();
        AdamW {
            params,
            moments,
            step: 0,
            weight_decay,
        }
    }

    pub fn zero_grad(&mut self) {
        for (_, p) in &mut self.params {
            p.zero_grad();
        }
    }

    /// Scales gradients so their global L2 norm is at most `max_norm`; returns the norm before.
    pub fn clip_grad_norm(&mut self, max_norm: f64) -> Result<f64> {
        let grads: Vec<Tensor> = self
            .params
            .iter()
            .map(|(_, p)| p.grad())
            .filter(|g| g.defined())
            .collect();
        if grads.is_empty() {
            return Ok(0.0);
        }
        // One read of one number, not one per tensor.
        let norms: Vec<Tensor> = grads.iter().map(|g| g.f_norm()).collect::<Result<_, _>>()?;
        let norm = Tensor::f_stack(&norms, 0)?.f_norm()?.f_double_value(&[])?;
        if norm > max_norm {
            let scale = max_norm / (norm + 1e-6);
            tch::no_grad(|| -> Result<()> {
                for mut g in grads {
                    let _ = g.f_mul_scalar_(scale)?;
                }
                Ok(())
            })?;
        }
        Ok(norm)
    }

    /// One update at learning rate `lr`. Weight decay is decoupled (applied to the weights,
    /// not the gradient) and skips 1-D tensors (biases, norm scales), as is usual. Written as
    /// in-place updates (lerp, addcdiv) so each tensor costs few kernels and two temporaries.
    pub fn step(&mut self, lr: f64) -> Result<()> {
        self.step += 1;
        let t = self.step as i32;
        let bias1 = 1.0 - BETA1.powi(t);
        let root_bias2 = (1.0 - BETA2.powi(t)).sqrt();
        tch::no_grad(|| -> Result<()> {
            for ((_, p), (m, v)) in self.params.iter_mut().zip(self.moments.iter_mut()) {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                if self.weight_decay > 0.0 && p.dim() > 1 {
                    let _ = p.f_mul_scalar_(1.0 - lr * self.weight_decay)?;
                }
                let _ = m.f_lerp_(&g, 1.0 - BETA1)?;
                let _ = v.f_lerp_(&g.f_square()?, 1.0 - BETA2)?;
                // p -= lr/bias1 · m / (√v/√bias2 + ε), with the scale folded into the divisor.
                let mut divisor = v.f_sqrt()?;
                let _ = divisor.f_add_scalar_(EPSILON * root_bias2)?;
                let _ = divisor.f_mul_scalar_(-bias1 / (lr * root_bias2))?;
                let _ = p.f_addcdiv_(m, &divisor)?;
            }
            Ok(())
        })
    }

    /// The moments by parameter name: `m.<name>` and `v.<name>`.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut state = Vec::with_capacity(2 * self.params.len());
        for ((name, _), (m, v)) in self.params.iter().zip(&self.moments) {
            state.push((format!("optim.m.{name}"), m.shallow_clone()));
            state.push((format!("optim.v.{name}"), v.shallow_clone()));
        }
        state
    }

    /// Restores moments saved by [`AdamW::state`] and the step count.
    pub fn load_state(&mut self, saved: &HashMap<String, Tensor>, step: i64) -> Result<()> {
        tch::no_grad(|| -> Result<()> {
            for ((name, p), (m, v)) in self.params.iter().zip(self.moments.iter_mut()) {
                for (kind, target) in [("m", m), ("v", v)] {
                    let key = format!("optim.{kind}.{name}");
                    match saved.get(&key) {
                        Some(t) if t.size() == p.size() => target.f_copy_(t)?,
                        Some(t) => bail!(
                            "checkpoint's '{key}' has shape {:?}, expected {:?}",
                            t.size(),
                            p.size()
                        ),
                        None => bail!("checkpoint has no optimiser state '{key}'"),
                    }
                }
            }
            Ok(())
        })?;
        self.step = step;
        Ok(())
    }
}

/// The learning rate of the optimiser step after `global_step` steps, `elapsed_seconds` into
/// the run: the config's warm-up and cosine over its epochs of `steps_per_epoch`. With a time
/// budget the schedule follows whichever is further along, steps or time, so the rate has
/// annealed when the budget runs out.
pub fn scheduled_lr(
    config: &TrainConfig,
    steps_per_epoch: usize,
    global_step: i64,
    elapsed_seconds: f64,
) -> f64 {
    let total_steps = steps_per_epoch * config.epochs;
    let schedule_step = match config.time_budget_minutes {
        Some(minutes) => {
            let by_time = elapsed_seconds / (minutes * 60.0) * total_steps as f64;
            (global_step as usize).max(by_time as usize)
        }
        None => global_step as usize,
    };
    learning_rate(
        schedule_step,
        config.warmup_steps,
        total_steps,
        config.lr,
        config.min_lr,
        config.cosine,
    )
}

/// Linear warm-up over `warmup` steps, then cosine decay from `peak` to `floor` by `total`.
pub fn learning_rate(
    step: usize,
    warmup: usize,
    total: usize,
    peak: f64,
    floor: f64,
    cosine: bool,
) -> f64 {
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    if !cosine || total <= warmup {
        return peak;
    }
    let progress = ((step - warmup) as f64 / (total - warmup) as f64).min(1.0);
    floor + 0.5 * (peak - floor) * (1.0 + (std::f64::consts::PI * progress).cos())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn adamw_matches_the_closed_form_first_step() {
        // After one step Adam moves each weight by lr · sign(g) (bias-corrected m/√v = ±1).
        let p = Tensor::from_slice(&[1.0f32, -2.0, 3.0]).set_requires_grad(true);
        let mut opt = AdamW::new(vec![("p".into(), p.shallow_clone())], 0.0);
        (&p * Tensor::from_slice(&[2.0f32, -1.0, 0.5]))
            .sum(Kind::Float)
            .backward();
        opt.step(0.1).unwrap();
        let got: Vec<f32> = Vec::try_from(&p.detach()).unwrap();
        for (g, want) in got.iter().zip([0.9f32, -1.9, 2.9]) {
            assert!((g - want).abs() < 1e-5, "{got:?}");
        }
    }

    #[test]
    fn adamw_minimises_a_quadratic() {
        let p = Tensor::from_slice(&[5.0f32, -3.0])
            .to_device(Device::Cpu)
            .set_requires_grad(true);
        let mut opt = AdamW::new(vec![("p".into(), p.shallow_clone())], 0.0);
        for _ in 0..500 {
            opt.zero_grad();
            p.pow_tensor_scalar(2).sum(Kind::Float).backward();
            opt.step(0.05).unwrap();
        }
        assert!(p.abs().max().double_value(&[]) < 0.05, "{p}");
    }

    #[test]
    fn gradient_clipping_bounds_the_norm() {
        let p = Tensor::from_slice(&[0.0f32, 0.0]).set_requires_grad(true);
        let mut opt = AdamW::new(vec![("p".into(), p.shallow_clone())], 0.0);
        (&p * Tensor::from_slice(&[30.0f32, 40.0]))
            .sum(Kind::Float)
            .backward();
        assert!((opt.clip_grad_norm(1.0).unwrap() - 50.0).abs() < 1e-4);
        let norm = p.grad().norm().double_value(&[]);
        assert!((norm - 1.0).abs() < 1e-3, "{norm}");
    }

    #[test]
    fn schedule_warms_up_then_decays_to_the_floor() {
        assert!((learning_rate(0, 10, 100, 1.0, 0.0, true) - 0.1).abs() < 1e-12);
        assert!((learning_rate(9, 10, 100, 1.0, 0.0, true) - 1.0).abs() < 1e-12);
        assert!((learning_rate(55, 10, 100, 1.0, 0.0, true) - 0.5).abs() < 1e-12);
        assert!(learning_rate(100, 10, 100, 1.0, 0.1, true) - 0.1 < 1e-12);
        assert_eq!(learning_rate(50, 0, 100, 1.0, 0.0, false), 1.0);
    }
}
