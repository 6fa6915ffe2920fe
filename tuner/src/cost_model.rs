//! The learned cost model: a random forest (smartcore) regressing log(cost) on
//! [`crate::features`], trained online on this run's measurements and on the records
//! already in the database for the same workload and target. It ranks candidates
//! before they are built, so the evolutionary search spends measurements on the
//! promising ones.

use smartcore::ensemble::random_forest_regressor::{
    RandomForestRegressor, RandomForestRegressorParameters,
};
use smartcore::linalg::basic::matrix::DenseMatrix;

/// Minimum number of samples before the model is trained (below it, predictions are
/// all equal and the search explores uniformly).
pub const MIN_SAMPLES: usize = 8;

/// The cost model.
pub struct CostModel {
    xs: Vec<Vec<f64>>,
    ys: Vec<f64>,
    forest: Option<RandomForestRegressor<f64, f64, DenseMatrix<f64>, Vec<f64>>>,
    seed: u64,
}

impl CostModel {
    /// An untrained model; `seed` makes training deterministic.
    pub fn new(seed: u64) -> CostModel {
        CostModel {
            xs: Vec::new(),
            ys: Vec::new(),
            forest: None,
            seed,
        }
    }

    /// Adds a measured sample (`cost` > 0).
    pub fn add(&mut self, features: Vec<f64>, cost: f64) {
        if cost > 0.0 && cost.is_finite() {
            self.xs.push(features);
            self.ys.push(cost.ln());
        }
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.ys.len()
    }

    /// True when no sample was added.
    pub fn is_empty(&self) -> bool {
        self.ys.is_empty()
    }

    /// Retrains on all samples (no-op below [`MIN_SAMPLES`]).
    pub fn train(&mut self) {
        if self.ys.len() < MIN_SAMPLES {
            return;
        }
        let Ok(x) = DenseMatrix::from_2d_vec(&self.xs) else {
            return;
        };
        let params = RandomForestRegressorParameters::default()
            .with_n_trees(32)
            .with_max_depth(8)
            .with_seed(self.seed);
        self.forest = RandomForestRegressor::fit(&x, &self.ys, params).ok();
    }

    /// Predicted log-costs of feature vectors (lower is better); all zero when
    /// untrained.
    pub fn predict(&self, xs: &[Vec<f64>]) -> Vec<f64> {
        let zeros = vec![0.0; xs.len()];
        let Some(forest) = &self.forest else {
            return zeros;
        };
        if xs.is_empty() {
            return zeros;
        }
        let Ok(x) = DenseMatrix::from_2d_vec(&xs.to_vec()) else {
            return zeros;
        };
        forest.predict(&x).unwrap_or(zeros)
    }

    /// True when trained.
    pub fn is_trained(&self) -> bool {
        self.forest.is_some()
    }
}
