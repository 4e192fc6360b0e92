//! A vectorisable exp for softmax rows, and the row reductions around it.
//!
//! `exp` is Cephes' expf scheme: x = n ln2 + r with n = round(x / ln2) (Cody-Waite: ln2 split in
//! two so n ln2 is exact), e^r by a degree-7 polynomial on |r| <= ln2 / 2, times 2^n built in the
//! exponent bits. No branch, no table, no libm call: LLVM turns the loops into SIMD code of
//! whatever width the function is compiled for. Relative error against f64's exp: at most 2.5e-7
//! (2 ulp) over [-87, 0] (`tests::exp_error_against_f64`); inputs below -87 give 2^-126-scale
//! values, not 0 (a softmax term that small is below f32's resolution of the row sum anyway).
//!
//! Natively each public function picks, once (`super::multiversion!`), the widest x86 variant the CPU has (AVX-512F, then
//! AVX2 + FMA, then the SSE2 baseline); in wasm the SIMD build compiles them with simd128.

const LANES: usize = 16;

/// e^x for x <= 88 (inputs below -87 are taken as -87); inlined into each caller's loop.
#[inline(always)]
pub(crate) fn exp_one(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 * 2^23: adding it rounds to an integer and leaves n in the low mantissa bits
    const MAGIC: f32 = 12_582_912.0;
    let x = x.max(-87.0);
    let t = x * LOG2E + MAGIC;
    let n = t - MAGIC;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 5.000_000_1e-1;
    let p = p * r * r + r + 1.0;
    // 2^n: the low bits of t's pattern hold n + 0x400000 (the magic's mantissa)
    let pow2 = f32::from_bits((t.to_bits().wrapping_sub(0x4B40_0000).wrapping_add(127)) << 23);
    p * pow2
}

#[inline(always)]
fn max_generic(xs: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let mut chunks = xs.chunks_exact(LANES);
    for c in &mut chunks {
        for l in 0..LANES {
            acc[l] = if c[l] > acc[l] { c[l] } else { acc[l] };
        }
    }
    let mut m = chunks.remainder().iter().fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m });
    for a in acc {
        m = if a > m { a } else { m };
    }
    m
}

/// xs[j] = exp((xs[j] - shift) * scale); returns the sum of the new values.
#[inline(always)]
fn exp_shift_sum_generic(xs: &mut [f32], shift: f32, scale: f32) -> f32 {
    let mut acc = [0f32; LANES];
    let mut chunks = xs.chunks_exact_mut(LANES);
    for c in &mut chunks {
        for l in 0..LANES {
            let e = exp_one((c[l] - shift) * scale);
            c[l] = e;
            acc[l] += e;
        }
    }
    let mut s = 0f32;
    for x in chunks.into_remainder() {
        *x = exp_one((*x - shift) * scale);
        s += *x;
    }
    s + acc.iter().sum::<f32>()
}

#[inline(always)]
fn scale_generic(xs: &mut [f32], s: f32) {
    for x in xs {
        *x *= s;
    }
}

multiversion!(
    /// The largest value of `xs` (-inf when empty).
    pub fn max(xs: &[f32]) -> f32 => max_generic
);
multiversion!(
    /// xs[j] = exp((xs[j] - shift) * scale) in place; returns their sum.
    pub fn exp_shift_sum(xs: &mut [f32], shift: f32, scale: f32) -> f32 => exp_shift_sum_generic
);
multiversion!(
    /// xs[j] *= s.
    pub fn scale(xs: &mut [f32], s: f32) -> () => scale_generic
);

/// exp of one value, the kernel's formula (for tests and callers with a scalar).
pub fn exp(x: f32) -> f32 {
    exp_one(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every f32 in [-87, 0] on a fine grid (and the ends): relative error against f64 at most
    /// 2.5e-7 (about 2 ulp of f32), the accuracy Cephes states for this scheme.
    #[test]
    fn exp_error_against_f64() {
        let mut worst = 0f64;
        let n = 2_000_000;
        let mut xs: Vec<f32> = (0..=n).map(|i| -87.0 * i as f32 / n as f32).collect();
        xs.extend([0.0, -0.0, -1e-30, -1e-7, -0.346_573_6, -0.346_573_62, -86.999]);
        let mut out = xs.clone();
        exp_shift_sum(&mut out, 0.0, 1.0);
        for (&x, &y) in xs.iter().zip(&out) {
            let e = (x as f64).exp();
            worst = worst.max(((y as f64 - e) / e).abs());
            assert_eq!(y, exp(x), "the vector and scalar paths differ at {x}");
        }
        assert!(worst <= 2.5e-7, "max relative error {worst:e}");
        // a softmax row's length (a SigLIP tile's 1024 keys): the 16-lane sum within 1e-6 relative
        let row: Vec<f32> = (0..1024).map(|i| -((i * 7919 % 1024) as f32) / 64.0).collect();
        let mut e = row.clone();
        let sum = exp_shift_sum(&mut e, 0.0, 1.0) as f64;
        let want: f64 = row.iter().map(|&x| (x as f64).exp()).sum();
        assert!(((sum - want) / want).abs() < 1e-6, "sum {sum} vs {want}");
    }

    #[test]
    fn shift_scale_max_and_tails() {
        // lengths around the 16-lane chunks: remainder handling
        for len in [0usize, 1, 15, 16, 17, 33, 100] {
            let xs: Vec<f32> = (0..len).map(|i| ((i * 37 % 11) as f32) - 5.0).collect();
            let m = max(&xs);
            let want_m = xs.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            assert_eq!(m, want_m, "max of {len}");
            let mut ys = xs.clone();
            let s = exp_shift_sum(&mut ys, m, 0.125);
            let mut want_s = 0f64;
            for (x, y) in xs.iter().zip(&ys) {
                let e = (((x - m) * 0.125) as f64).exp();
                want_s += e;
                assert!(((*y as f64 - e) / e).abs() < 2.5e-7, "{x}: {y} vs {e}");
            }
            assert!((s as f64 - want_s).abs() <= 1e-6 * want_s.max(1.0), "sum of {len}: {s} vs {want_s}");
            let mut zs = xs.clone();
            scale(&mut zs, 0.5);
            assert!(zs.iter().zip(&xs).all(|(z, x)| *z == x * 0.5));
        }
    }
}
