//! The one seeded generator: splitmix64 (Steele, Lea, Flood 2014). Pruning's random methods and
//! ZOO's directions draw from it bit-for-bit as the numpy reference does
//! (tests/pruning_reference/reference.py); the synthetic scenes, the built-in model's weights and
//! the fuzzer draw from it too. Two integer draws exist because data depends on each: `below`
//! (rejection, the numpy reference's) and `index` (multiply-shift, which every scene of the
//! built-in model's training and test sets was drawn with).

/// The splitmix64 finaliser. A bijection on `u64` (xor-shifts and odd multiplications are
/// invertible), which `scenes::scene_seed` relies on.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `state += 0x9E3779B97F4A7C15`, output `mix64(state)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.state)
    }

    /// Uniform in (0, 1].
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in 0..n (n > 0), by rejection (no modulo bias): the numpy reference's draw.
    pub fn below(&mut self, n: u64) -> u64 {
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let v = self.next_u64();
            if v < zone {
                return v % n;
            }
        }
    }

    /// Uniform in `0..n` (multiply-shift; `n > 0`): the scenes' draw.
    pub fn index(&mut self, n: usize) -> usize {
        assert!(n > 0, "index(0)");
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// Uniform in `lo..=hi` (multiply-shift).
    pub fn range_incl(&mut self, lo: usize, hi: usize) -> usize {
        assert!(lo <= hi, "empty range {lo}..={hi}");
        lo + self.index(hi - lo + 1)
    }

    pub fn coin(&mut self) -> bool {
        self.next_u64() >> 63 == 1
    }

    /// Fisher-Yates shuffle (multiply-shift draws).
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.index(i + 1);
            v.swap(i, j);
        }
    }
}
