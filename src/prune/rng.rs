//! ZOO-Prune's random directions and the random methods' permutations, drawn from the one seeded
//! generator (`crate::rng`) bit-for-bit as the numpy reference (tests/pruning_reference/reference.py)
//! does: uniforms in (0, 1], Box-Muller normals. The same seed gives the same result on every platform.

pub use crate::rng::SplitMix64;

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
