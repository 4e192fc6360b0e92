//! A small deterministic generator shared bit-for-bit with the numpy reference
//! (tests/pruning_reference/reference.py): splitmix64, uniforms in (0, 1], Box-Muller normals.
//! The same seed gives the same directions and the same random ranking on every platform.

pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in 0..n (n > 0), by rejection (no modulo bias).
    pub fn below(&mut self, n: u64) -> u64 {
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let v = self.next_u64();
            if v < zone {
                return v % n;
            }
        }
    }
}

/// m x d standard normals (row-major, Box-Muller pairs: cos then sin), each row scaled to unit
/// L2 norm: the m shared perturbation directions of ZOO-Prune's Algorithm 1.
pub fn gaussian_directions(seed: u64, m: usize, d: usize) -> Vec<f64> {
    let mut rng = SplitMix64::new(seed);
    let n = m * d;
    let mut v = Vec::with_capacity(n + 1);
    while v.len() < n {
        let u1 = rng.uniform();
        let u2 = rng.uniform();
        let r = (-2.0 * u1.ln()).sqrt();
        let a = 2.0 * std::f64::consts::PI * u2;
        v.push(r * a.cos());
        v.push(r * a.sin());
    }
    v.truncate(n);
    for row in v.chunks_mut(d) {
        let norm = row.iter().map(|x| x * x).sum::<f64>().sqrt();
        for x in row {
            *x /= norm;
        }
    }
    v
}

/// A seeded uniformly random permutation of 0..n (Fisher-Yates).
pub fn permutation(seed: u64, n: usize) -> Vec<usize> {
    let mut rng = SplitMix64::new(seed);
    let mut p: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        p.swap(i, j);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_reference_values() {
        // splitmix64 with seed 0: the published first outputs
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn directions_are_unit_and_seeded() {
        let a = gaussian_directions(3, 5, 7);
        assert_eq!(a, gaussian_directions(3, 5, 7));
        assert_ne!(a, gaussian_directions(4, 5, 7));
        for row in a.chunks(7) {
            let n: f64 = row.iter().map(|x| x * x).sum();
            assert!((n - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn permutation_is_a_permutation() {
        let mut p = permutation(9, 100);
        assert_ne!(p, (0..100).collect::<Vec<_>>());
        p.sort();
        assert_eq!(p, (0..100).collect::<Vec<_>>());
    }
}
