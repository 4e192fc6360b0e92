//! The SigLIP MLP's activation after fc1, `gelu_tanh(x + bias)`, in one pass over the matmul's
//! output, in place, parallel over rows where the build has threads; and the same for the Llama
//! MLP's `silu(gate) * up` ([`silu_mul`]).
//!
//! burn's path takes seven element-wise passes for it (the bias, then x * sigmoid(2u) written in
//! tensor ops), each on one thread in flex, with the exp of libm (scalar): a profile of a SigLIP
//! tile natively at two threads (perf, 2026-12-03) put 22 % of the CPU time on the thread outside
//! rayon, half of it in that exp and flex's unary kernel.
//!
//! gelu_tanh(y) = 0.5 y (1 + tanh u) with u = sqrt(2/pi) (y + 0.044715 y^3), computed as
//! y * sigmoid(2u) (the same identity as `model::layers::gelu_tanh`), the sigmoid from
//! e = exp(-|2u|) in [0, 1] so that no input overflows; exp is [`super::exp`]'s (2 ulp).

use super::exp::exp_one;

/// Elements per parallel task (a few rows of fc1's output).
#[cfg(any(not(target_family = "wasm"), feature = "wasm-threads"))]
const PIECE: usize = 1 << 15;

#[inline(always)]
fn gelu_one(y: f32) -> f32 {
    const C: f32 = 2.0 * 0.797_884_6; // 2 sqrt(2/pi)
    let z = y * (y * y * (0.044715 * C) + C); // 2u
    // below -87, e^-|z| is under f32's normal range: 0, so that a very negative y gives 0
    let e = if z.abs() > 87.0 { 0.0 } else { exp_one(-z.abs()) };
    let r = 1.0 / (1.0 + e);
    let s = if z >= 0.0 { r } else { e * r };
    y * s
}

#[inline(always)]
fn bias_gelu_generic(xs: &mut [f32], bias: &[f32]) {
    for row in xs.chunks_exact_mut(bias.len()) {
        for (x, &b) in row.iter_mut().zip(bias) {
            *x = gelu_one(*x + b);
        }
    }
}

multiversion!(
    /// [`bias_gelu_tanh`] on one thread.
    pub fn bias_gelu_rows(xs: &mut [f32], bias: &[f32]) -> () => bias_gelu_generic
);

/// xs[r, j] = gelu_tanh(xs[r, j] + bias[j]) for xs [rows, bias.len()] row-major, in place.
pub fn bias_gelu_tanh(xs: &mut [f32], bias: &[f32]) {
    let n = bias.len();
    assert!(n > 0 && xs.len() % n == 0, "{} values are not rows of {n}", xs.len());
    #[cfg(any(not(target_family = "wasm"), feature = "wasm-threads"))]
    if xs.len() >= 2 * PIECE {
        use rayon::prelude::*;
        let rows = (PIECE / n).max(1);
        xs.par_chunks_mut(rows * n).for_each(|c| bias_gelu_rows(c, bias));
        return;
    }
    bias_gelu_rows(xs, bias);
}

/// silu(g) u = g sigmoid(g) u, the sigmoid from e = exp(-|g|) as in [`gelu_one`].
#[inline(always)]
fn silu_mul_one(g: f32, u: f32) -> f32 {
    let e = if g.abs() > 87.0 { 0.0 } else { exp_one(-g.abs()) };
    let r = 1.0 / (1.0 + e);
    let s = if g >= 0.0 { r } else { e * r };
    g * s * u
}

#[inline(always)]
fn silu_mul_generic(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = silu_mul_one(*g, u);
    }
}

multiversion!(
    /// [`silu_mul`] on one thread.
    pub fn silu_mul_piece(gate: &mut [f32], up: &[f32]) -> () => silu_mul_generic
);

/// gate[i] = silu(gate[i]) up[i] in place: the Llama MLP's activation in one pass, parallel where
/// the build has threads (burn's path: silu through flex's unary kernel with libm's scalar expf,
/// 7 % of a 1112-token prefill natively in a profile of 2026-12-04, then the product).
pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
    assert_eq!(gate.len(), up.len(), "silu_mul: {} gate values, {} up values", gate.len(), up.len());
    #[cfg(any(not(target_family = "wasm"), feature = "wasm-threads"))]
    if gate.len() >= 2 * PIECE {
        use rayon::prelude::*;
        gate.par_chunks_mut(PIECE).zip(up.par_chunks(PIECE)).for_each(|(g, u)| silu_mul_piece(g, u));
        return;
    }
    silu_mul_piece(gate, up);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// silu(g) u = g / (1 + e^-g) u in f64, against the kernel on a grid over [-40, 40] and far
    /// out: within 4e-7 of the value's size plus 1e-30 (f32 inputs, the 2-ulp exp); the parallel
    /// split the same as one thread, bit for bit.
    #[test]
    fn silu_mul_matches_the_f64_definition() {
        let gs: Vec<f32> = (0..100_003).map(|i| ((i * 7919 % 8001) as f32 - 4000.0) / 100.0).collect();
        let us: Vec<f32> = (0..gs.len()).map(|i| ((i % 17) as f32 - 8.0) * 0.25).collect();
        let mut out = gs.clone();
        silu_mul(&mut out, &us);
        for ((&g, &u), &y) in gs.iter().zip(&us).zip(&out) {
            let want = g as f64 / (1.0 + (-(g as f64)).exp()) * u as f64;
            assert!((y as f64 - want).abs() <= 4e-7 * want.abs() + 1e-30, "silu({g}) * {u} = {y}, want {want}");
        }
        let mut one = gs.clone();
        silu_mul_piece(&mut one, &us);
        assert!(one == out, "the parallel split changed a value");
        for (g, want) in [(-1e30f32, 0.0f32), (-100.0, 0.0), (1e30, 1e30), (0.0, 0.0), (f32::INFINITY, f32::INFINITY)] {
            let mut x = [g];
            silu_mul(&mut x, &[1.0]);
            assert!(x[0] == want || (x[0].abs() < 1e-30 && want == 0.0), "silu({g}) = {}", x[0]);
        }
    }

    /// HF's definition, in f64: 0.5 y (1 + tanh(sqrt(2/pi) (y + 0.044715 y^3))).
    fn gelu_f64(y: f64) -> f64 {
        0.5 * y * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (y + 0.044715 * y * y * y)).tanh())
    }

    /// Against the f64 definition on a fine grid over [-20, 20] and far out: within 4e-7 of the
    /// value's size plus 1e-7 absolute (f32 rounding of the inputs and the 2-ulp exp; the tails
    /// go to 0 and to y without overflow), with the bias added first; every row length around the
    /// 16 lanes, and the parallel split (rows of 3072, SigLIP's intermediate size) the same as one
    /// thread, bit for bit.
    #[test]
    fn bias_gelu_matches_the_f64_definition() {
        for n in [1usize, 3, 15, 16, 17, 40] {
            let rows = 25;
            let bias: Vec<f32> = (0..n).map(|j| (j as f32 - 7.0) * 0.1).collect();
            let xs: Vec<f32> = (0..rows * n).map(|i| ((i * 7919 % 4001) as f32 - 2000.0) / 100.0).collect();
            let mut ys = xs.clone();
            bias_gelu_tanh(&mut ys, &bias);
            for (i, (&x, &y)) in xs.iter().zip(&ys).enumerate() {
                let v = x + bias[i % n];
                let want = gelu_f64(v as f64);
                assert!((y as f64 - want).abs() <= 4e-7 * want.abs() + 1e-7, "gelu({v}) = {y}, want {want}");
            }
        }
        for (v, want) in [(-1e30f32, 0.0f32), (-100.0, 0.0), (1e30, 1e30), (0.0, 0.0), (f32::INFINITY, f32::INFINITY)] {
            let mut x = [v];
            bias_gelu_tanh(&mut x, &[0.0]);
            assert!(x[0] == want || (x[0].abs() < 1e-30 && want == 0.0), "gelu({v}) = {}", x[0]);
        }
        let mut nan = [f32::NAN];
        bias_gelu_tanh(&mut nan, &[0.0]);
        assert!(nan[0].is_nan());
        let n = 3072;
        let bias: Vec<f32> = (0..n).map(|j| (j % 13) as f32 * 0.05 - 0.3).collect();
        let xs: Vec<f32> = (0..64 * n).map(|i| ((i * 104_729 % 8191) as f32 - 4095.0) / 800.0).collect();
        let (mut par, mut one) = (xs.clone(), xs);
        bias_gelu_tanh(&mut par, &bias);
        bias_gelu_rows(&mut one, &bias);
        assert!(par == one, "the parallel split changed a value");
    }
}
