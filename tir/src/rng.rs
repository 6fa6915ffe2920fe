//! A tiny, stable pseudo-random generator for workload weights and test inputs.
//!
//! One spec string must mean one exact weight tensor (and so one exact sparsity
//! pattern) on every machine and with every version of every dependency, so the
//! generator is written out here rather than borrowed: SplitMix64 (Steele, Lea and
//! Flood, 2014), whose output sequence is fixed by its definition.

/// SplitMix64: a 64-bit state advanced by a Weyl sequence and mixed.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A float uniform in `[0, 1)` with 24 random bits (exactly representable).
    pub fn next_unit_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// A float uniform in `[-scale, scale)`.
    pub fn next_symmetric_f32(&mut self, scale: f32) -> f32 {
        (self.next_unit_f32() * 2.0 - 1.0) * scale
    }

    /// `n` floats uniform in `[-scale, scale)`.
    pub fn symmetric_vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.next_symmetric_f32(scale)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_is_the_published_splitmix64() {
        // Reference values of SplitMix64 seeded with 1234567.
        let mut r = SplitMix64::new(1234567);
        assert_eq!(r.next_u64(), 6457827717110365317);
        assert_eq!(r.next_u64(), 3203168211198807973);
        assert_eq!(r.next_u64(), 9817491932198370423);
    }

    #[test]
    fn floats_stay_in_range() {
        let mut r = SplitMix64::new(7);
        for _ in 0..10_000 {
            let u = r.next_unit_f32();
            assert!((0.0..1.0).contains(&u));
            let s = r.next_symmetric_f32(0.5);
            assert!((-0.5..0.5).contains(&s));
        }
    }
}
