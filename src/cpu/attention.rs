//! Scaled dot-product attention on f32 slices, for burn's CPU backend (flex) and the browser's
//! CPU builds. Self-contained (gemm for the two products natively, [`super::gemm`] in the browser's
//! SIMD builds, rayon where the build has threads, and [`super::exp`]): nothing here knows burn.
//!
//! out = softmax(scale Q K^T + mask) V for every (batch, query head), with
//! - grouped-query heads: query head h reads key/value head h / (q_heads / kv_heads), K and V never
//!   repeated;
//! - the causal mask bottom-right aligned (query i of q_len sees key j iff j <= kv_len - q_len + i:
//!   a prefill after a cache, HF's `is_causal` with a past);
//! - any row strides: Q, K, V and the output are read and written where the model's tensors already
//!   are ([b, s, heads, d] straight out of a projection, or [b, heads, s, d], or a KV cache with
//!   spare capacity), so no transpose or copy precedes or follows the call;
//! - optionally the head-averaged probabilities [batch, q_len, kv_len] (what VisionZip and FastV
//!   read), from the same softmax.
//!
//! Per task (batch, block of `BLOCK` query rows), for each head: S = Q_blk K^T over the keys the
//! block's last row sees (one gemm), per row max, exp and sum in one vectorised pass (masked keys
//! are skipped, not computed), O_blk = P V (one gemm), O rows times 1/sum. A whole row of scores
//! fits in cache for every shape the model has (1024 keys for a SigLIP tile, ~1.2 k for a prefill),
//! so one pass with the exact max replaces an online softmax's rescaling. Tasks run in parallel with
//! rayon; each writes its own output rows.

use super::exp;

/// Query rows per task.
pub const BLOCK: usize = 64;

/// Where element (b, head, row, 0) of a tensor is: b * batch + head * head + row * row (elements);
/// the last dimension is contiguous.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Strides {
    pub batch: usize,
    pub head: usize,
    pub row: usize,
}

impl Strides {
    /// [batch, heads, rows, dim] contiguous.
    pub fn heads_major(heads: usize, rows: usize, dim: usize) -> Self {
        Self { batch: heads * rows * dim, head: rows * dim, row: dim }
    }
    /// [batch, rows, heads, dim] contiguous (a projection's output, before any transpose).
    pub fn rows_major(heads: usize, rows: usize, dim: usize) -> Self {
        Self { batch: rows * heads * dim, head: dim, row: heads * dim }
    }
    fn at(&self, b: usize, h: usize, r: usize) -> usize {
        b * self.batch + h * self.head + r * self.row
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Problem {
    pub batch: usize,
    pub q_heads: usize,
    pub kv_heads: usize,
    pub q_len: usize,
    pub kv_len: usize,
    pub head_dim: usize,
    /// Bottom-right aligned causal mask (needs kv_len >= q_len).
    pub causal: bool,
    /// Multiplies Q K^T (1 / sqrt(head_dim) for the model).
    pub scale: f32,
}

impl Problem {
    /// Keys visible to query row i.
    fn visible(&self, i: usize) -> usize {
        if self.causal {
            self.kv_len - self.q_len + i + 1
        } else {
            self.kv_len
        }
    }
}

/// A tensor's elements and strides.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub data: &'a [f32],
    pub strides: Strides,
}

/// One past the largest element (b, h, r, dim - 1) touches.
fn extent(s: Strides, batch: usize, heads: usize, rows: usize, dim: usize) -> usize {
    if batch == 0 || heads == 0 || rows == 0 {
        return 0;
    }
    s.at(batch - 1, heads - 1, rows - 1) + dim
}

/// A raw pointer the tasks share; each task writes rows no other task writes.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

/// Runs the attention of `p`: q [batch, q_heads, q_len, head_dim], k and v
/// [batch, kv_heads, kv_len, head_dim] (by their strides), into `out` (q's shape, `out_strides`);
/// `head_mean`, when given, receives the probabilities averaged over the query heads,
/// [batch, q_len, kv_len] contiguous.
///
/// Panics when a slice is too short for its strides or the heads do not group.
pub fn attention(
    p: &Problem,
    q: View,
    k: View,
    v: View,
    out: &mut [f32],
    out_strides: Strides,
    head_mean: Option<&mut [f32]>,
) {
    attention_using(p, q, k, v, out, out_strides, head_mean, super::gemm::IN_USE)
}

/// [`attention`] with its two products taken by [`super::gemm`] (`ours`) or by the gemm crate.
#[allow(clippy::too_many_arguments)]
fn attention_using(
    p: &Problem,
    q: View,
    k: View,
    v: View,
    out: &mut [f32],
    out_strides: Strides,
    head_mean: Option<&mut [f32]>,
    ours: bool,
) {
    let d = p.head_dim;
    assert!(p.kv_heads > 0 && p.q_heads % p.kv_heads == 0, "{} query heads do not group over {} kv heads", p.q_heads, p.kv_heads);
    assert!(!p.causal || p.kv_len >= p.q_len, "causal attention needs kv_len >= q_len");
    assert!(q.data.len() >= extent(q.strides, p.batch, p.q_heads, p.q_len, d), "q is too short for its strides");
    assert!(k.data.len() >= extent(k.strides, p.batch, p.kv_heads, p.kv_len, d), "k is too short for its strides");
    assert!(v.data.len() >= extent(v.strides, p.batch, p.kv_heads, p.kv_len, d), "v is too short for its strides");
    assert!(out.len() >= extent(out_strides, p.batch, p.q_heads, p.q_len, d), "out is too short for its strides");
    let mean_len = p.batch * p.q_len * p.kv_len;
    if let Some(m) = &head_mean {
        assert!(m.len() >= mean_len, "head_mean needs {mean_len} elements");
    }
    if p.batch == 0 || p.q_len == 0 || p.q_heads == 0 || d == 0 {
        return;
    }
    let blocks = p.q_len.div_ceil(BLOCK);
    let out_ptr = SendPtr(out.as_mut_ptr());
    let mean_ptr = head_mean.map(|m| SendPtr(m.as_mut_ptr()));
    let task = |t: usize| {
        let (b, blk) = (t / blocks, t % blocks);
        let i0 = blk * BLOCK;
        let n = BLOCK.min(p.q_len - i0);
        // SAFETY: task (b, blk) writes only out rows (b, *, i0..i0 + n) and head_mean rows
        // (b, i0..i0 + n), disjoint across tasks and within the bounds asserted above
        unsafe { block(p, q, k, v, out_ptr, out_strides, mean_ptr, b, i0, n, ours) }
    };
    let tasks = p.batch * blocks;
    #[cfg(any(not(target_family = "wasm"), feature = "wasm-threads"))]
    {
        use rayon::prelude::*;
        // small problems (one decoded token) are not worth a fork
        let work = p.batch * p.q_heads * p.q_len * p.kv_len * d;
        if tasks > 1 && work >= 1 << 18 {
            (0..tasks).into_par_iter().for_each(task);
            return;
        }
    }
    (0..tasks).for_each(task);
}

#[allow(clippy::too_many_arguments)]
unsafe fn block(
    p: &Problem,
    q: View,
    k: View,
    v: View,
    out: SendPtr,
    os: Strides,
    mean: Option<SendPtr>,
    b: usize,
    i0: usize,
    n: usize,
    ours: bool,
) {
    let d = p.head_dim;
    let group = p.q_heads / p.kv_heads;
    let kl = p.visible(i0 + n - 1);
    let mut scores = vec![0f32; n * kl];
    let mut inv = vec![0f32; n];
    for h in 0..p.q_heads {
        let kh = h / group;
        let qp = q.data.as_ptr().add(q.strides.at(b, h, i0));
        let kp = k.data.as_ptr().add(k.strides.at(b, kh, 0));
        let vp = v.data.as_ptr().add(v.strides.at(b, kh, 0));
        // scores[r, j] = q_r . k_j: lhs Q rows, rhs K^T (column j is key j)
        let qs = std::slice::from_raw_parts(qp, (n - 1) * q.strides.row + d);
        let ks = std::slice::from_raw_parts(kp, kl.saturating_sub(1) * k.strides.row + d);
        let kt = super::gemm::Mat { data: ks, rs: 1, cs: k.strides.row };
        super::gemm::product_using(ours, n, kl, d, super::gemm::Mat::rows(qs, q.strides.row), kt, &mut scores, kl);
        for r in 0..n {
            let vis = p.visible(i0 + r);
            let row = &mut scores[r * kl..(r + 1) * kl];
            let (seen, masked) = row.split_at_mut(vis);
            let m = exp::max(seen);
            let s = exp::exp_shift_sum(seen, m, p.scale);
            masked.fill(0.0);
            inv[r] = 1.0 / s;
        }
        // out rows = P V, then each row times 1 / its sum
        let op = out.0.add(os.at(b, h, i0));
        // this task's rows of head h: no other task writes between their first and last element
        let os_ = std::slice::from_raw_parts_mut(op, (n - 1) * os.row + d);
        let vs = std::slice::from_raw_parts(vp, kl.saturating_sub(1) * v.strides.row + d);
        super::gemm::product_using(ours, n, d, kl, super::gemm::Mat::rows(&scores, kl), super::gemm::Mat::rows(vs, v.strides.row), os_, os.row);
        for (r, &s) in inv.iter().enumerate() {
            exp::scale(std::slice::from_raw_parts_mut(op.add(r * os.row), d), s);
        }
        if let Some(mp) = mean {
            let w = 1.0 / p.q_heads as f32;
            for (r, &s) in inv.iter().enumerate() {
                let dst = std::slice::from_raw_parts_mut(mp.0.add((b * p.q_len + i0 + r) * p.kv_len), p.kv_len);
                let src = &scores[r * kl..(r + 1) * kl];
                let f = s * w;
                if h == 0 {
                    for (o, &x) in dst.iter_mut().zip(src) {
                        *o = x * f;
                    }
                    dst[kl..].fill(0.0);
                } else {
                    for (o, &x) in dst.iter_mut().zip(src) {
                        *o += x * f;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::cpu::test_values as values;

    /// The definition, in f64, one (batch, head, row) at a time: softmax(scale q k^T + mask) v, and
    /// the head-averaged probabilities.
    fn reference(p: &Problem, q: View, k: View, v: View) -> (Vec<f64>, Vec<f64>) {
        let d = p.head_dim;
        let g = p.q_heads / p.kv_heads;
        let mut out = vec![0f64; p.batch * p.q_heads * p.q_len * d]; // heads-major
        let mut mean = vec![0f64; p.batch * p.q_len * p.kv_len];
        for b in 0..p.batch {
            for h in 0..p.q_heads {
                for i in 0..p.q_len {
                    let qi = &q.data[q.strides.at(b, h, i)..][..d];
                    let vis = if p.causal { p.kv_len - p.q_len + i + 1 } else { p.kv_len };
                    let s: Vec<f64> = (0..vis)
                        .map(|j| {
                            let kj = &k.data[k.strides.at(b, h / g, j)..][..d];
                            p.scale as f64 * qi.iter().zip(kj).map(|(a, b)| *a as f64 * *b as f64).sum::<f64>()
                        })
                        .collect();
                    let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
                    let z: f64 = e.iter().sum();
                    for (j, ej) in e.iter().enumerate() {
                        let vj = &v.data[v.strides.at(b, h / g, j)..][..d];
                        for c in 0..d {
                            out[((b * p.q_heads + h) * p.q_len + i) * d + c] += ej / z * vj[c] as f64;
                        }
                        mean[(b * p.q_len + i) * p.kv_len + j] += ej / z / p.q_heads as f64;
                    }
                }
            }
        }
        (out, mean)
    }

    /// Runs the kernel on random inputs laid out by `layout` and checks it against [`reference`]:
    /// outputs within 2e-6 absolute (values are averages of V entries in [-1, 1]; f32 products
    /// accumulate ~1e-7 relative error per term, the exp is within 2.5e-7), probabilities within 1e-6,
    /// both times `loose` (for large scores, whose f32 rounding moves the exponents).
    fn check_tol(p: Problem, rows_major: bool, kv_cap: usize, loose: f64) {
        let d = p.head_dim;
        let (qs, os) = if rows_major {
            (Strides::rows_major(p.q_heads, p.q_len, d), Strides::rows_major(p.q_heads, p.q_len, d))
        } else {
            (Strides::heads_major(p.q_heads, p.q_len, d), Strides::heads_major(p.q_heads, p.q_len, d))
        };
        // K and V as a cache with spare rows: kv_cap >= kv_len
        let ks = Strides::heads_major(p.kv_heads, kv_cap, d);
        let qd = values(p.batch * p.q_heads * p.q_len * d, 1, 2.0);
        let kd = values(p.batch * p.kv_heads * kv_cap * d, 2, 2.0);
        let vd = values(p.batch * p.kv_heads * kv_cap * d, 3, 1.0);
        let (q, k, v) = (View { data: &qd, strides: qs }, View { data: &kd, strides: ks }, View { data: &vd, strides: ks });
        for ours in [false, true] {
        let mut out = vec![f32::NAN; qd.len()];
        let mut mean = vec![f32::NAN; p.batch * p.q_len * p.kv_len];
        attention_using(&p, q, k, v, &mut out, os, Some(&mut mean), ours);
        let (want, want_mean) = reference(&p, q, k, v);
        let mut worst = 0f64;
        for b in 0..p.batch {
            for h in 0..p.q_heads {
                for i in 0..p.q_len {
                    for c in 0..d {
                        let got = out[os.at(b, h, i) + c] as f64;
                        let w = want[((b * p.q_heads + h) * p.q_len + i) * d + c];
                        worst = worst.max((got - w).abs());
                    }
                }
            }
        }
        assert!(worst <= 2e-6 * loose, "{p:?} rows_major {rows_major} ours {ours}: max |out - reference| {worst:e}");
        let worst_p = mean.iter().zip(&want_mean).map(|(a, b)| (*a as f64 - b).abs()).fold(0f64, f64::max);
        assert!(worst_p <= 1e-6 * loose, "{p:?}: max |head-mean probs - reference| {worst_p:e}");
        // without probabilities: the same output
        let mut out2 = vec![f32::NAN; qd.len()];
        attention_using(&p, q, k, v, &mut out2, os, None, ours);
        let same = out.iter().zip(&out2).all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()));
        assert!(same, "{p:?}: asking for probabilities changed the output");
        }
    }

    fn check(p: Problem, rows_major: bool, kv_cap: usize) {
        check_tol(p, rows_major, kv_cap, 1.0)
    }

    fn problem(batch: usize, q_heads: usize, kv_heads: usize, q_len: usize, kv_len: usize, causal: bool) -> Problem {
        Problem { batch, q_heads, kv_heads, q_len, kv_len, head_dim: 64, causal, scale: 0.125 }
    }

    /// A SigLIP tile's layer: 1024 patches, 12 heads of 64, no mask, straight from the projections.
    #[test]
    fn encoder_tile() {
        check(problem(1, 12, 12, 1024, 1024, false), true, 1024);
    }

    /// Two tiles in one batch, heads-major, a length off the block size.
    #[test]
    fn encoder_batch_of_two() {
        check(problem(2, 4, 4, 200, 200, false), false, 200);
    }

    /// SmolLM2-135M's grouping (9 query heads over 3 kv heads), causal prefill of 300 from empty,
    /// then 170 more rows after a cache of 300 (bottom-right aligned), keys in a cache of 600 rows.
    #[test]
    fn causal_prefill_gqa() {
        check(problem(1, 9, 3, 300, 300, true), false, 600);
        check(problem(1, 9, 3, 170, 470, true), true, 600);
    }

    /// One decoded token over a long cache, and a first token with no past.
    #[test]
    fn decode_one_token() {
        check(problem(1, 9, 3, 1, 1111, true), false, 1200);
        check(problem(1, 9, 3, 1, 1, true), true, 1);
    }

    /// Large scores (scale 4: scores of a few hundred): the row max keeps exp in range. f32 scores
    /// carry ~1e-7 relative error, ~5e-5 absolute at this size, which moves each probability by as
    /// much relatively: tolerance 50x the default.
    #[test]
    fn large_scores_stay_finite() {
        let p = Problem { scale: 4.0, ..problem(1, 2, 1, 70, 90, true) };
        check_tol(p, false, 90, 50.0);
    }

    #[test]
    #[should_panic(expected = "do not group")]
    fn heads_must_group() {
        let p = problem(1, 5, 3, 1, 1, false);
        let z = vec![0f32; 5 * 64];
        let s = Strides::heads_major(5, 1, 64);
        attention(&p, View { data: &z, strides: s }, View { data: &z, strides: s }, View { data: &z, strides: s }, &mut z.clone(), s, None);
    }
}
