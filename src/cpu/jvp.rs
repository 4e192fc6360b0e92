//! ZOO's sensitivity by the closed-form JVP (`prune::zoo::JvpPlan`, whose notes give the algebra)
//! on f32 slices: the per-patch LayerNorm, two products per patch slot, then per token the two
//! terms and the norms of their difference in one pass over a scratch that stays in cache.
//!
//! Why: burn's tensor path runs the terms as batched matmuls over swapped views (each one
//! materialised) and then four element-wise passes over [tokens, m, d_t] (9.4 MB a tile at m = 64,
//! each on one thread in flex): natively 494-518 ms for 1088 tokens against PyTorch's 233-319 ms,
//! in the page 2.8-3.4x native (README, "The page against the native CLI"), its batched matmuls
//! not reaching this module's product in wasm.
//!
//! Shapes: tokens `n`, patch slots `s2` (the connector's scale factor squared), vision width `dv`,
//! text width `dt`, directions `m`. Per token i and slot q, with xhat_iq the normalised patch and
//! alpha_iq = 1 / sigma_iq:
//!   B_q = xhat_q G_q [n, dt],  C_q = xhat_q U_q^T / dv [n, m]       (products per slot)
//!   D_i = sum_q alpha_iq P_q - beta_i^T B_i,  beta_iqj = alpha_iq C_q[i, j]   ([m, dt] per token)
//!   s_i = mean_j |D_i[j, :]|
//! with G_q = diag(gamma) W_q, P_q = (U_q - mean U_q) G_q, made once per image by the plan.

/// The per-image half: G [s2, dv, dt], P [s2, m * dt], and the directions U [m, s2, dv] as drawn.
pub struct Plan<'a> {
    pub g: &'a [f32],
    pub p: &'a [f32],
    pub u: &'a [f32],
    pub s2: usize,
    pub dv: usize,
    pub dt: usize,
    pub m: usize,
    pub eps: f32,
}

/// Runs `f(scratch, i)` for i in 0..n, over rayon's pool where the build has threads, each task
/// reusing one `init()` scratch for its share of the indices.
fn each<S>(n: usize, init: impl Fn() -> S + Sync + Send, f: impl Fn(&mut S, usize) + Sync + Send) {
    #[cfg(any(not(target_family = "wasm"), feature = "wasm-threads"))]
    {
        use rayon::prelude::*;
        (0..n).into_par_iter().for_each_init(init, f);
    }
    #[cfg(not(any(not(target_family = "wasm"), feature = "wasm-threads")))]
    {
        let mut s = init();
        (0..n).for_each(|i| f(&mut s, i));
    }
}

/// Tokens per parallel task of the per-token terms (they share P's rows in cache).
const TOKEN_BLOCK: usize = 8;

#[derive(Clone, Copy)]
struct Ptr(*mut f32);
unsafe impl Send for Ptr {}
unsafe impl Sync for Ptr {}

impl Ptr {
    /// The pointer (a method, so that a closure captures the Send wrapper, not its field).
    fn at(self, offset: usize) -> *mut f32 {
        // SAFETY of the callers: offsets within the buffer the pointer was taken from
        self.0.wrapping_add(offset)
    }
}

/// P [s2, m * dt]: P_q = (U_q - mean U_q) G_q for the directions u [m, s2, dv] (as drawn) and
/// G [s2, dv, dt], the per-image half that [`Plan`] holds.
pub fn plan_p(g: &[f32], u: &[f32], s2: usize, dv: usize, dt: usize, m: usize) -> Vec<f32> {
    plan_p_using(g, u, s2, dv, dt, m, super::gemm::IN_USE)
}

/// [`plan_p`] with its products taken by our gemm (`ours`) or by the gemm crate.
pub fn plan_p_using(g: &[f32], u: &[f32], s2: usize, dv: usize, dt: usize, m: usize, ours: bool) -> Vec<f32> {
    assert_eq!(g.len(), s2 * dv * dt, "G is not [{s2}, {dv}, {dt}]");
    assert_eq!(u.len(), m * s2 * dv, "U is not [{m}, {s2}, {dv}]");
    let mut p = vec![0f32; s2 * m * dt];
    if m == 0 || dt == 0 {
        return p;
    }
    let pp = Ptr(p.as_mut_ptr());
    each(s2, || vec![0f32; m * dv], |centred, q| {
        // U_q - its mean over the vision width, row by row
        for j in 0..m {
            let src = &u[(j * s2 + q) * dv..][..dv];
            let mean = src.iter().sum::<f32>() / dv as f32;
            for (d, &v) in centred[j * dv..][..dv].iter_mut().zip(src) {
                *d = v - mean;
            }
        }
        // SAFETY: slot q's rows of P, disjoint from every other slot's
        let pq = unsafe { std::slice::from_raw_parts_mut(pp.at(q * m * dt), m * dt) };
        super::gemm::product_using(ours, m, dt, dv, super::gemm::Mat::rows(centred, dv), super::gemm::Mat::rows(&g[q * dv * dt..][..dv * dt], dt), pq, dt);
    });
    p
}

/// The sensitivity of tokens x [n, s2, dv] (pre-LN patches, row-major): n values.
pub fn sensitivity(plan: &Plan, x: &[f32], n: usize) -> Vec<f32> {
    sensitivity_using(plan, x, n, super::gemm::IN_USE)
}

/// [`sensitivity`] with its products taken by our gemm (`ours`) or by the gemm crate.
pub fn sensitivity_using(plan: &Plan, x: &[f32], n: usize, ours: bool) -> Vec<f32> {
    let &Plan { g, p, u, s2, dv, dt, m, eps } = plan;
    assert_eq!(x.len(), n * s2 * dv, "x is not [{n}, {s2}, {dv}]");
    assert_eq!(g.len(), s2 * dv * dt, "G is not [{s2}, {dv}, {dt}]");
    assert_eq!(p.len(), s2 * m * dt, "P is not [{s2}, {m} * {dt}]");
    assert_eq!(u.len(), m * s2 * dv, "U is not [{m}, {s2}, {dv}]");
    if n == 0 {
        return Vec::new();
    }
    // xhat per slot [s2, n, dv] and alpha [n, s2]
    let mut xq = vec![0f32; s2 * n * dv];
    let mut alpha = vec![0f32; n * s2];
    for i in 0..n {
        for q in 0..s2 {
            let row = &x[(i * s2 + q) * dv..][..dv];
            let mean = row.iter().sum::<f32>() / dv as f32;
            let var = row.iter().map(|&v| (v - mean) * (v - mean)).sum::<f32>() / dv as f32;
            let a = 1.0 / (var + eps).sqrt();
            alpha[i * s2 + q] = a;
            for (o, &v) in xq[(q * n + i) * dv..][..dv].iter_mut().zip(row) {
                *o = (v - mean) * a;
            }
        }
    }
    // per slot: B_q = xhat_q G_q [n, dt] and C_q = xhat_q U_q^T [n, m]
    let mut b = vec![0f32; s2 * n * dt];
    let mut c = vec![0f32; s2 * n * m];
    let (bp, cp) = (Ptr(b.as_mut_ptr()), Ptr(c.as_mut_ptr()));
    each(s2, || (), |_, q| {
        // SAFETY: slot q's rows of B and C, disjoint from every other slot's
        let (bq, cq) = unsafe { (std::slice::from_raw_parts_mut(bp.at(q * n * dt), n * dt), std::slice::from_raw_parts_mut(cp.at(q * n * m), n * m)) };
        let xs = super::gemm::Mat::rows(&xq[q * n * dv..][..n * dv], dv);
        super::gemm::product_using(ours, n, dt, dv, xs, super::gemm::Mat::rows(&g[q * dv * dt..][..dv * dt], dt), bq, dt);
        // U_q^T: element (v, j) is U[j, q, v]
        super::gemm::product_using(ours, n, m, dv, xs, super::gemm::Mat { data: &u[q * dv..], rs: 1, cs: s2 * dv }, cq, m);
    });
    // per token: D = sum_q alpha_q P_q - beta^T B_i, then the mean of its rows' norms
    let mut out = vec![0f32; n];
    let op = Ptr(out.as_mut_ptr());
    let inv_dv = 1.0 / dv as f32;
    // tokens in blocks: for each j the block's tokens read P's rows of j (s2 x dt) while they
    // are in cache, so that P is read from memory once a block rather than once a token
    let blocks = n.div_ceil(TOKEN_BLOCK);
    each(blocks, || (vec![0f32; dt], vec![0f32; TOKEN_BLOCK * m * s2], [0f32; TOKEN_BLOCK]), |(row, nbeta, total), blk| {
        let (i0, i1) = (blk * TOKEN_BLOCK, ((blk + 1) * TOKEN_BLOCK).min(n));
        for i in i0..i1 {
            // -beta^T [m, s2] of token i: (j, q) = -alpha_iq C_q[i, j] / dv
            let nb = &mut nbeta[(i - i0) * m * s2..][..m * s2];
            for q in 0..s2 {
                let f = -alpha[i * s2 + q] * inv_dv;
                for j in 0..m {
                    nb[j * s2 + q] = f * c[(q * n + i) * m + j];
                }
            }
        }
        total.fill(0.0);
        for j in 0..m {
            for i in i0..i1 {
                // row j of D_i: sum_q alpha_iq P_q[j, :] - beta_iqj B_q[i, :], in a row in L1
                row.fill(0.0);
                accumulate_rows(row, &alpha[i * s2..][..s2], &p[j * dt..], m * dt);
                accumulate_rows(row, &nbeta[((i - i0) * m + j) * s2..][..s2], &b[i * dt..], n * dt);
                total[i - i0] += sum_of_squares(row).sqrt();
            }
        }
        for i in i0..i1 {
            // SAFETY: token i's own value, in this block alone
            unsafe { *op.at(i) = total[i - i0] / m as f32 };
        }
    });
    out
}

multiversion!(
    /// acc += sum_q w_q data[q * stride..][..acc.len()].
    pub fn accumulate_rows(acc: &mut [f32], w: &[f32], data: &[f32], stride: usize) -> () => accumulate_generic
);

/// [`accumulate_rows`], four rows per pass over acc.
#[inline(always)]
fn accumulate_generic(acc: &mut [f32], w: &[f32], data: &[f32], stride: usize) {
    let len = acc.len();
    let row = |q: usize| &data[q * stride..][..len];
    let mut q = 0;
    while q + 4 <= w.len() {
        let (r0, r1, r2, r3) = (row(q), row(q + 1), row(q + 2), row(q + 3));
        let (w0, w1, w2, w3) = (w[q], w[q + 1], w[q + 2], w[q + 3]);
        for c in 0..len {
            acc[c] += w0 * r0[c] + w1 * r1[c] + w2 * r2[c] + w3 * r3[c];
        }
        q += 4;
    }
    for q in q..w.len() {
        let (r, wq) = (row(q), w[q]);
        for c in 0..len {
            acc[c] += wq * r[c];
        }
    }
}

multiversion!(
    /// sum_c a_c^2.
    pub fn sum_of_squares(a: &[f32]) -> f32 => sum_of_squares_generic
);

/// [`sum_of_squares`] in 16 lanes that LLVM vectorises.
#[inline(always)]
fn sum_of_squares_generic(a: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let chunks = a.chunks_exact(16);
    let tail: f32 = chunks.remainder().iter().map(|x| x * x).sum();
    for x in chunks {
        for t in 0..16 {
            acc[t] += x[t] * x[t];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition in f64, from nothing of the plan's algebra: the derivative along u_j of
    /// flatten(gamma * LN(x_q) + beta) W at x, by the LayerNorm's derivative per patch
    /// (d xhat = (du - mean du) / sigma - xhat mean(xhat du) / sigma), then the mean over
    /// directions of its norm.
    fn reference(x: &[f32], w: &[f32], gamma: &[f32], u: &[f32], n: usize, s2: usize, dv: usize, dt: usize, m: usize, eps: f64) -> Vec<f64> {
        (0..n)
            .map(|i| {
                let mut sum = 0.0;
                for j in 0..m {
                    let mut y = vec![0f64; dt];
                    for q in 0..s2 {
                        let xr: Vec<f64> = x[(i * s2 + q) * dv..][..dv].iter().map(|&v| v as f64).collect();
                        let ur: Vec<f64> = u[(j * s2 + q) * dv..][..dv].iter().map(|&v| v as f64).collect();
                        let mean = xr.iter().sum::<f64>() / dv as f64;
                        let sigma = (xr.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / dv as f64 + eps).sqrt();
                        let xhat: Vec<f64> = xr.iter().map(|v| (v - mean) / sigma).collect();
                        let mu = ur.iter().sum::<f64>() / dv as f64;
                        let proj = xhat.iter().zip(&ur).map(|(a, b)| a * b).sum::<f64>() / dv as f64;
                        for v in 0..dv {
                            let dx = ((ur[v] - mu) - xhat[v] * proj) / sigma * gamma[v] as f64;
                            for (c, yc) in y.iter_mut().enumerate() {
                                *yc += dx * w[(q * dv + v) * dt + c] as f64;
                            }
                        }
                    }
                    sum += y.iter().map(|v| v * v).sum::<f64>().sqrt();
                }
                sum / m as f64
            })
            .collect()
    }

    /// The plan's half as `JvpPlan::new` makes it, in f64 then rounded: G and P.
    fn plan_parts(w: &[f32], gamma: &[f32], u: &[f32], s2: usize, dv: usize, dt: usize, m: usize) -> (Vec<f32>, Vec<f32>) {
        let g: Vec<f32> = (0..s2 * dv * dt).map(|e| w[e] * gamma[(e / dt) % dv]).collect();
        let mut p = vec![0f32; s2 * m * dt];
        for q in 0..s2 {
            for j in 0..m {
                let ur = &u[(j * s2 + q) * dv..][..dv];
                let mu = ur.iter().map(|&v| v as f64).sum::<f64>() / dv as f64;
                for c in 0..dt {
                    let s: f64 = (0..dv).map(|v| (ur[v] as f64 - mu) * g[(q * dv + v) * dt + c] as f64).sum();
                    p[(q * m + j) * dt + c] = s as f32;
                }
            }
        }
        (g, p)
    }

    #[test]
    fn matches_the_definition() {
        // SmolVLM's proportions, smaller; dv and dt not multiples of the vectors or tiles; one
        // token; and one direction
        for &(n, s2, dv, dt, m) in &[(10, 4, 36, 27, 8), (1, 4, 20, 9, 3), (7, 9, 16, 33, 1), (5, 16, 48, 40, 64)] {
            let w = crate::cpu::test_values(s2 * dv * dt, 2, 0.2);
            let gamma: Vec<f32> = crate::cpu::test_values(dv, 3, 0.5).iter().map(|v| v + 1.0).collect();
            let u = crate::cpu::test_values(m * s2 * dv, 4, 1.0);
            // even tokens lean on a direction, so that the second term (xhat . u) is as large
            // as the first for them; odd tokens are noise plus an offset per element
            let x: Vec<f32> = crate::cpu::test_values(n * s2 * dv, 1, 2.0)
                .iter()
                .enumerate()
                .map(|(e, v)| {
                    let (i, qv) = (e / (s2 * dv), e % (s2 * dv));
                    v + (e % 5) as f32 + if i % 2 == 0 { 3.0 * u[(i % m) * s2 * dv + qv] } else { 0.0 }
                })
                .collect();
            let eps = 1e-6;
            let (g, p) = plan_parts(&w, &gamma, &u, s2, dv, dt, m);
            let plan = Plan { g: &g, p: &p, u: &u, s2, dv, dt, m, eps: eps as f32 };
            let want = reference(&x, &w, &gamma, &u, n, s2, dv, dt, m, eps);
            for ours in [false, true] {
                // the plan's P from its own products: f32 sums of dv products, of values
                // O(1) x O(0.2), of size 0.2 sqrt(dv): 1e-5 sqrt(dv) (a wrong slot or a missing
                // centring is O(0.1))
                let got = plan_p_using(&g, &u, s2, dv, dt, m, ours);
                let worst = got.iter().zip(&p).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
                assert!(worst <= 1e-5 * (dv as f32).sqrt(), "{n} x {s2} x {dv} -> {dt}, m {m}, ours {ours}: P off by {worst}");
                let got = sensitivity_using(&plan, &x, n, ours);
                assert_eq!(got.len(), n);
                // f32 sums of up to s2 * dv products and of a difference of two terms of similar
                // size: relative 1e-4 of the largest value (a wrong slot, sign or index is O(1))
                let scale = want.iter().fold(0.0f64, |a, &v| a.max(v.abs()));
                for (t, (&a, &b)) in got.iter().zip(&want).enumerate() {
                    assert!((a as f64 - b).abs() <= 1e-4 * scale, "{n} x {s2} x {dv} -> {dt}, m {m}, ours {ours}: token {t}: {a} vs {b}");
                }
            }
        }
    }
}
