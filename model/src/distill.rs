//! The knowledge-distillation loss (Hinton et al., 2015) of fine-tuning: the student
//! matches the teacher's softened class distribution, optionally plus the usual
//! cross-entropy with the true label.
//!
//! For student logits `z`, teacher logits `t`, temperature `T` and hard weight `α`:
//!
//! `L = (1 − α) · T² · KL(softmax(t/T) ‖ softmax(z/T)) + α · CE(softmax(z), label)`
//!
//! (`α` counts only when a label is given; without one `L` is the soft term alone,
//! weighted 1). The `T²` keeps the soft term's gradient on the scale of the hard
//! term's: `∂L/∂z = (1 − α) · T · (softmax(z/T) − softmax(t/T)) + α · (softmax(z) − onehot)`.
//! The KL form has the soft cross-entropy's gradient and is zero when the student
//! matches the teacher. Logits of several rows are one distribution per row (over the
//! last axis); a label applies to single-row outputs only.

/// The distillation loss's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Distillation {
    /// Softmax temperature `T` (> 0) of the soft term.
    pub temperature: f32,
    /// Weight `α` in `[0, 1]` of the hard-label term.
    pub hard_weight: f32,
}

/// `log softmax(z / t)` in f64.
fn log_softmax(z: &[f32], t: f32) -> Vec<f64> {
    let t = t as f64;
    let m = z
        .iter()
        .fold(f64::NEG_INFINITY, |a, &v| a.max(v as f64 / t));
    let lse = m + z
        .iter()
        .map(|&v| (v as f64 / t - m).exp())
        .sum::<f64>()
        .ln();
    z.iter().map(|&v| v as f64 / t - lse).collect()
}

impl Distillation {
    /// The loss and its gradient with respect to the student's logits, for logits
    /// whose last axis has `classes` entries.
    pub fn loss(
        &self,
        student: &[f32],
        teacher: &[f32],
        classes: usize,
        label: Option<usize>,
    ) -> (f64, Vec<f32>) {
        let classes = classes.max(1);
        let rows = student.len() / classes;
        let label = label.filter(|&l| rows == 1 && l < classes);
        let alpha = if label.is_some() {
            self.hard_weight.clamp(0.0, 1.0) as f64
        } else {
            0.0
        };
        let t = self.temperature.max(1e-3);
        let mut loss = 0.0;
        let mut grad = vec![0.0f32; student.len()];
        for r in 0..rows {
            let (zs, zt) = (
                &student[r * classes..(r + 1) * classes],
                &teacher[r * classes..(r + 1) * classes],
            );
            let (ls, lt) = (log_softmax(zs, t), log_softmax(zt, t));
            let g = &mut grad[r * classes..(r + 1) * classes];
            let soft = (1.0 - alpha) * (t as f64) * (t as f64);
            for k in 0..classes {
                let pt = lt[k].exp();
                loss += soft * pt * (lt[k] - ls[k]);
                g[k] = ((1.0 - alpha) * t as f64 * (ls[k].exp() - pt)) as f32;
            }
            if let Some(l) = label {
                let l1 = log_softmax(zs, 1.0);
                loss -= alpha * l1[l];
                for k in 0..classes {
                    let onehot = if k == l { 1.0 } else { 0.0 };
                    g[k] += (alpha * (l1[k].exp() - onehot)) as f32;
                }
            }
        }
        (loss, grad)
    }
}

/// The log-probability the logits `z` give class `label` (`softmax` at temperature 1).
pub fn log_prob(z: &[f32], label: usize) -> f64 {
    log_softmax(z, 1.0)
        .get(label)
        .copied()
        .unwrap_or(f64::NEG_INFINITY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tir::rng::SplitMix64;

    #[test]
    fn gradient_matches_finite_differences_and_the_loss_is_zero_at_the_teacher() {
        let mut rng = SplitMix64::new(9);
        for (t, alpha, label, rows) in [
            (1.0, 0.0, None, 1),
            (4.0, 0.0, None, 2),
            (3.0, 0.4, Some(2), 1),
            (2.0, 1.0, Some(0), 1),
        ] {
            let d = Distillation {
                temperature: t,
                hard_weight: alpha,
            };
            let z = rng.symmetric_vec(5 * rows, 3.0);
            let tz = rng.symmetric_vec(5 * rows, 3.0);
            let (_, g) = d.loss(&z, &tz, 5, label);
            for i in 0..z.len() {
                let eps = 1e-2f32;
                let (mut zp, mut zm) = (z.clone(), z.clone());
                zp[i] += eps;
                zm[i] -= eps;
                let num = (d.loss(&zp, &tz, 5, label).0 - d.loss(&zm, &tz, 5, label).0)
                    / (2.0 * eps as f64);
                assert!(
                    (num - g[i] as f64).abs() < 2e-3 + 1e-2 * num.abs(),
                    "T {t} alpha {alpha} element {i}: numeric {num}, analytic {}",
                    g[i]
                );
            }
        }
        let d = Distillation {
            temperature: 4.0,
            hard_weight: 0.0,
        };
        let z = rng.symmetric_vec(10, 3.0);
        let (l, g) = d.loss(&z, &z, 10, None);
        assert!(
            l.abs() < 1e-9 && g.iter().all(|v| v.abs() < 1e-6),
            "{l} {g:?}"
        );
        assert!(d.loss(&z, &rng.symmetric_vec(10, 3.0), 10, None).0 > 0.0);
    }
}
