//! C = A B (+ bias) in f32 for the browser's SIMD builds: the products of every Linear, of the
//! logits and of our attention, where gemm 0.19's wasm kernel left most of the time (README,
//! "The page against the native CLI").
//!
//! Why our own in wasm: a profile of the page encoding SigLIP tiles on two threads (perf with V8's
//! `--perf-basic-prof`, 2026-12-03) spent 84 % of both cores in gemm's simd128 microkernel, which
//! multiplies and adds separately (gemm has no relaxed-SIMD kernel) in a 12 x 4 register tile that
//! needs all 16 of x86's vector registers (V8 keeps one as scratch: spills), and the page's encode
//! scaled 1.28x from one thread to two; two pages each running it on one core did not slow down.
//! Here: a 4 x 8 tile (8 accumulators, two B vectors, one broadcast A value: 11 registers), with
//! `f32x4.relaxed_madd` (one fused multiply-add where the engine has FMA) in the threaded build,
//! which needs relaxed SIMD (www/wasm-pkg.js checks for it); mul + add in the one-thread SIMD build,
//! which every SIMD browser must run. Natively this module is not used (gemm's AVX-512 and AVX2
//! kernels are faster than anything written here): its loops run in the native tests on a
//! portable 4-lane vector, so that everything but the five vector operations is tested by cargo.
//!
//! The loops are GotoBLAS's: for each block of `KC` depth, B's block is packed into panels of `NR`
//! columns (kc x NR each, row after row), A's block of `MC` rows into panels of `MR` rows (kc x MR,
//! column after column), and the register tile runs over the panels, A's block staying in L2 and a
//! B panel in L1. Parallel work is split over blocks of C (rows x columns), each task packing its
//! own operands: no synchronisation inside a product, one fork-join per product. Fewer than
//! `VECTOR_ROWS` rows (a decoded token) skip the packing: B is streamed once (`matvec`).

/// Rows of the register tile.
pub const MR: usize = 4;
/// Columns of the register tile (two 4-lane vectors).
pub const NR: usize = 8;
/// Depth per packed block.
const KC: usize = 256;
/// A rows per packed block (a multiple of MR): 64 x 256 x 4 bytes = 64 KiB, in L2.
const MC: usize = 64;
/// Rows of C per parallel task (a multiple of MC).
#[cfg(any(not(target_family = "wasm"), feature = "wasm-threads"))]
const TASK_ROWS: usize = 256;
/// Columns of C per parallel task, at most (a multiple of NR).
#[cfg(any(not(target_family = "wasm"), feature = "wasm-threads"))]
const TASK_COLS: usize = 512;

/// Whether this build uses this module for the model's products (the wasm builds with SIMD).
pub const IN_USE: bool = cfg!(all(target_arch = "wasm32", target_feature = "simd128"));

/// Fewer rows of A than this take the matrix-vector loops (a decoded token is one row), each row
/// on its own: no packing, B read once a row, in place.
const VECTOR_ROWS: usize = 4;
/// The matrix-vector loops split their columns over the pool from this much of B on (elements).
/// In wasm only the logits' product (576 x 49152) is split: a decoded token is bound by memory
/// bandwidth, and the pool's fork-join per product (Web Workers waking on atomics) cost more than
/// the second thread gave: the page at two threads decoded 17.7-19.4 tok/s with every product of
/// 2^18 elements or more split, 24.7-25.3 with only the logits split, 23.3-24.0 with none
/// (2026-12-04, SmolVLM-256M shapes, one tile; one thread: 23.6-24.0).
#[cfg(any(not(target_family = "wasm"), feature = "wasm-threads"))]
const VECTOR_PARALLEL: usize = if cfg!(target_family = "wasm") { 1 << 24 } else { 1 << 18 };

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod vector {
    use core::arch::wasm32::*;

    #[derive(Clone, Copy)]
    pub struct V(v128);

    #[inline(always)]
    pub fn zero() -> V {
        V(f32x4_splat(0.0))
    }
    #[inline(always)]
    pub unsafe fn load(p: *const f32) -> V {
        V(v128_load(p as *const v128))
    }
    #[inline(always)]
    pub unsafe fn splat(p: *const f32) -> V {
        V(v128_load32_splat(p as *const u32))
    }
    #[inline(always)]
    pub unsafe fn store(p: *mut f32, v: V) {
        v128_store(p as *mut v128, v.0)
    }
    #[inline(always)]
    pub fn add(a: V, b: V) -> V {
        V(f32x4_add(a.0, b.0))
    }
    #[inline(always)]
    pub fn sum(v: V) -> f32 {
        (f32x4_extract_lane::<0>(v.0) + f32x4_extract_lane::<1>(v.0)) + (f32x4_extract_lane::<2>(v.0) + f32x4_extract_lane::<3>(v.0))
    }
    /// a b + c: fused where the engine has FMA (relaxed SIMD lets it choose), else two roundings.
    #[inline(always)]
    pub fn mul_add(a: V, b: V, c: V) -> V {
        #[cfg(target_feature = "relaxed-simd")]
        return V(f32x4_relaxed_madd(a.0, b.0, c.0));
        #[cfg(not(target_feature = "relaxed-simd"))]
        V(f32x4_add(f32x4_mul(a.0, b.0), c.0))
    }
}

/// The same five operations on four plain lanes: what the native tests run.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
mod vector {
    #[derive(Clone, Copy)]
    pub struct V([f32; 4]);

    #[inline(always)]
    pub fn zero() -> V {
        V([0.0; 4])
    }
    #[inline(always)]
    pub unsafe fn load(p: *const f32) -> V {
        V(core::ptr::read_unaligned(p as *const [f32; 4]))
    }
    #[inline(always)]
    pub unsafe fn splat(p: *const f32) -> V {
        V([*p; 4])
    }
    #[inline(always)]
    pub unsafe fn store(p: *mut f32, v: V) {
        core::ptr::write_unaligned(p as *mut [f32; 4], v.0)
    }
    #[inline(always)]
    pub fn add(a: V, b: V) -> V {
        V(core::array::from_fn(|i| a.0[i] + b.0[i]))
    }
    #[inline(always)]
    pub fn sum(v: V) -> f32 {
        (v.0[0] + v.0[1]) + (v.0[2] + v.0[3])
    }
    #[inline(always)]
    pub fn mul_add(a: V, b: V, c: V) -> V {
        V(core::array::from_fn(|i| a.0[i] * b.0[i] + c.0[i]))
    }
}

/// A matrix read through strides: element (i, j) is `data[i * rs + j * cs]`.
#[derive(Clone, Copy)]
pub struct Mat<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> Mat<'a> {
    /// Rows of `cols` contiguous values, `rs` apart.
    pub fn rows(data: &'a [f32], rs: usize) -> Self {
        Self { data, rs, cs: 1 }
    }
    /// One past the last element of a rows x cols matrix (0 when it is empty).
    fn extent(&self, rows: usize, cols: usize) -> usize {
        if rows == 0 || cols == 0 {
            0
        } else {
            (rows - 1) * self.rs + (cols - 1) * self.cs + 1
        }
    }
}

#[derive(Clone, Copy)]
struct Ptr(*mut f32);
unsafe impl Send for Ptr {}
unsafe impl Sync for Ptr {}

/// The product's operands, checked once by [`matmul`].
#[derive(Clone, Copy)]
struct Problem<'a> {
    k: usize,
    a: Mat<'a>,
    b: Mat<'a>,
    c: Ptr,
    ldc: usize,
    bias: Option<&'a [f32]>,
}

/// c[i * ldc + j] = sum_p A(i, p) B(p, j) (+ bias[j]) for i < m, j < n: A is m x k, B is k x n,
/// C row-major with row stride `ldc` (the elements between rows are left alone). With
/// `parallel`, the work is split over rayon's pool where the build has threads (not from inside
/// another parallel task: the attention's blocks call it with `false`).
///
/// Panics when a slice is too short for its shape and strides, or ldc < n.
#[allow(clippy::too_many_arguments)]
pub fn matmul(m: usize, n: usize, k: usize, a: Mat, b: Mat, c: &mut [f32], ldc: usize, bias: Option<&[f32]>, parallel: bool) {
    assert!(ldc >= n, "C's row stride {ldc} is shorter than its {n} columns");
    assert!(a.data.len() >= a.extent(m, k), "A is too short for {m} x {k}");
    assert!(b.data.len() >= b.extent(k, n), "B is too short for {k} x {n}");
    assert!(m == 0 || n == 0 || c.len() >= (m - 1) * ldc + n, "C is too short for {m} x {n}");
    if let Some(b) = bias {
        assert!(b.len() >= n, "the bias has {} values for {n} columns", b.len());
    }
    if m == 0 || n == 0 {
        return;
    }
    let p = Problem { k, a, b, c: Ptr(c.as_mut_ptr()), ldc, bias };
    if m < VECTOR_ROWS && (b.cs == 1 || (b.rs == 1 && a.cs == 1)) {
        let run = |c0: usize, c1: usize| {
            for i in 0..m {
                // SAFETY: row i's columns c0..c1 of C, within the bounds asserted above
                unsafe { matvec(&p, i, c0, c1) }
            }
        };
        #[cfg(any(not(target_family = "wasm"), feature = "wasm-threads"))]
        if parallel && k * n >= VECTOR_PARALLEL {
            use rayon::prelude::*;
            let pieces = (4 * rayon::current_num_threads()).min(n.div_ceil(VECTOR_COLS)).max(1);
            let width = n.div_ceil(pieces).next_multiple_of(VECTOR_COLS);
            (0..n.div_ceil(width)).into_par_iter().for_each(|t| run(t * width, ((t + 1) * width).min(n)));
            return;
        }
        run(0, n);
        return;
    }
    #[cfg(any(not(target_family = "wasm"), feature = "wasm-threads"))]
    if parallel {
        use rayon::prelude::*;
        let row_blocks = m.div_ceil(TASK_ROWS);
        // columns split finer when there are few row blocks: about 4 tasks per thread
        let want = 4 * rayon::current_num_threads();
        let col_blocks = n.div_ceil(TASK_COLS).max(want.div_ceil(row_blocks)).min(n.div_ceil(4 * NR)).max(1);
        let width = n.div_ceil(col_blocks).next_multiple_of(NR);
        let col_blocks = n.div_ceil(width);
        if row_blocks * col_blocks > 1 {
            (0..row_blocks * col_blocks).into_par_iter().for_each(|t| {
                let (r, s) = (t / col_blocks, t % col_blocks);
                let (r0, c0) = (r * TASK_ROWS, s * width);
                // SAFETY: task (r, s) writes only C's rows r0.. and columns c0.. of its block,
                // disjoint from every other task's; the bounds were asserted above
                unsafe { block(&p, r0, (r0 + TASK_ROWS).min(m), c0, (c0 + width).min(n)) }
            });
            return;
        }
    }
    let _ = parallel;
    // SAFETY: the whole of C, within the bounds asserted above
    unsafe { block(&p, 0, m, 0, n) }
}

/// C = A B on one thread by this module's product (`ours`: what the browser's SIMD builds run) or
/// by the gemm crate (natively, where its AVX-512 / AVX2 kernels are faster), for the kernels
/// that run their products inside their own parallel tasks (attention's blocks, ZOO's slots).
/// C's rows are `ldc` apart; the elements between them are left alone.
#[allow(clippy::too_many_arguments)]
pub fn product_using(ours: bool, m: usize, n: usize, k: usize, a: Mat, b: Mat, c: &mut [f32], ldc: usize) {
    if ours || m == 0 || n == 0 || k == 0 {
        matmul(m, n, k, a, b, c, ldc, None, false);
        return;
    }
    assert!(ldc >= n, "C's row stride {ldc} is shorter than its {n} columns");
    assert!(a.data.len() >= a.extent(m, k), "A is too short for {m} x {k}");
    assert!(b.data.len() >= b.extent(k, n), "B is too short for {k} x {n}");
    assert!(c.len() >= (m - 1) * ldc + n, "C is too short for {m} x {n}");
    // SAFETY: the operands' extents were checked above; C is written only within its rows
    unsafe {
        ::gemm::gemm(
            m, n, k,
            c.as_mut_ptr(), 1, ldc as isize, false,
            a.data.as_ptr(), a.cs as isize, a.rs as isize,
            b.data.as_ptr(), b.cs as isize, b.rs as isize,
            0.0, 1.0, false, false, false,
            ::gemm::Parallelism::None,
        );
    }
}

/// C's rows r0..r1 and columns c0..c1.
unsafe fn block(p: &Problem, r0: usize, r1: usize, c0: usize, c1: usize) {
    let width = c1 - c0;
    let panels = width.div_ceil(NR);
    let kc_max = KC.min(p.k.max(1));
    let mut pb = vec![0f32; kc_max * panels * NR];
    let mut pa = vec![0f32; kc_max * MC];
    if p.k == 0 {
        // an empty sum: C = 0 (+ bias)
        for i in r0..r1 {
            let row = p.c.0.add(i * p.ldc);
            for j in c0..c1 {
                *row.add(j) = p.bias.map_or(0.0, |b| b[j]);
            }
        }
        return;
    }
    let mut k0 = 0;
    while k0 < p.k {
        let kc = KC.min(p.k - k0);
        pack_b(p, k0, kc, c0, width, &mut pb);
        let mut i0 = r0;
        while i0 < r1 {
            let mc = MC.min(r1 - i0);
            pack_a(p, i0, mc, k0, kc, &mut pa);
            for jp in 0..panels {
                let j = c0 + jp * NR;
                let cols = NR.min(c1 - j);
                let bias = if k0 == 0 { p.bias.map(|b| b.as_ptr().add(j)) } else { None };
                for ip in 0..mc.div_ceil(MR) {
                    let i = i0 + ip * MR;
                    tile(kc, pa.as_ptr().add(ip * kc * MR), pb.as_ptr().add(jp * kc * NR), p.c.0.add(i * p.ldc + j), p.ldc, MR.min(i0 + mc - i), cols, k0 == 0, bias);
                }
            }
            i0 += mc;
        }
        k0 += kc;
    }
}

/// Columns of a task of the matrix-vector loops, at least.
#[cfg(any(not(target_family = "wasm"), feature = "wasm-threads"))]
const VECTOR_COLS: usize = 32;

/// C(i, c0..c1) = A(i, ..) B(.., c0..c1) (+ bias) for one row of A: B's rows streamed once, four
/// at a time, into C's row (B row-major, `cs == 1`), or one dot product per column (B
/// column-major, `rs == 1`, A's row contiguous).
unsafe fn matvec(p: &Problem, i: usize, c0: usize, c1: usize) {
    let (a, b, k) = (p.a, p.b, p.k);
    let x = a.data.as_ptr().add(i * a.rs);
    let y = p.c.0.add(i * p.ldc);
    let bias = |j: usize| p.bias.map_or(0.0, |bs| bs[j]);
    if b.cs == 1 {
        // y = bias, then four rows of B at a time added into it: four contiguous streams, y's
        // slice (a task's columns) staying in L1
        let w = b.data.as_ptr();
        let yv = y.add(c0);
        let width = c1 - c0;
        let vecs = width / 4;
        for j in 0..width {
            *yv.add(j) = bias(c0 + j);
        }
        let mut q = 0;
        while q + 4 <= k {
            let xs = [0, 1, 2, 3].map(|t| vector::splat(x.add((q + t) * a.cs)));
            let rows = [0, 1, 2, 3].map(|t| w.add((q + t) * b.rs + c0));
            for v in 0..vecs {
                let mut acc = vector::load(yv.add(4 * v));
                for t in 0..4 {
                    acc = vector::mul_add(xs[t], vector::load(rows[t].add(4 * v)), acc);
                }
                vector::store(yv.add(4 * v), acc);
            }
            for j in 4 * vecs..width {
                let mut s = *yv.add(j);
                for (t, row) in rows.iter().enumerate() {
                    s += *x.add((q + t) * a.cs) * *row.add(j);
                }
                *yv.add(j) = s;
            }
            q += 4;
        }
        for q in q..k {
            let xq = vector::splat(x.add(q * a.cs));
            let row = w.add(q * b.rs + c0);
            for v in 0..vecs {
                vector::store(yv.add(4 * v), vector::mul_add(xq, vector::load(row.add(4 * v)), vector::load(yv.add(4 * v))));
            }
            for j in 4 * vecs..width {
                *yv.add(j) += *x.add(q * a.cs) * *row.add(j);
            }
        }
        return;
    }
    // B column-major: column j is contiguous, as is A's row
    for j in c0..c1 {
        let col = b.data.as_ptr().add(j * b.cs);
        let mut acc = [vector::zero(); 4];
        let mut q = 0;
        while q + 16 <= k {
            for (t, acc) in acc.iter_mut().enumerate() {
                *acc = vector::mul_add(vector::load(x.add(q + 4 * t)), vector::load(col.add(q + 4 * t)), *acc);
            }
            q += 16;
        }
        let mut s = vector::sum(vector::add(vector::add(acc[0], acc[1]), vector::add(acc[2], acc[3])));
        for q in q..k {
            s += *x.add(q) * *col.add(q);
        }
        *y.add(j) = s + bias(j);
    }
}

/// B(k0.., c0..c0 + width) into panels of NR columns, each kc rows of NR values; the columns past
/// `width` are zeros.
fn pack_b(p: &Problem, k0: usize, kc: usize, c0: usize, width: usize, pb: &mut [f32]) {
    let b = p.b;
    for (jp, panel) in pb.chunks_exact_mut(kc * NR).take(width.div_ceil(NR)).enumerate() {
        let j = c0 + jp * NR;
        let cols = NR.min(c0 + width - j);
        for (q, dst) in panel.chunks_exact_mut(NR).enumerate() {
            let at = (k0 + q) * b.rs + j * b.cs;
            if b.cs == 1 && cols == NR {
                // a copy of constant length: two vector moves (a slice copy of variable length
                // is wasm's memory.copy, a call into the engine's memmove: 8.6 % of a tile's
                // time in a profile, 32 bytes at a time)
                let src: &[f32; NR] = b.data[at..at + NR].try_into().expect("NR values");
                let dst: &mut [f32; NR] = dst.try_into().expect("NR values");
                *dst = *src;
                continue;
            }
            if b.cs == 1 {
                dst[..cols].copy_from_slice(&b.data[at..at + cols]);
            } else {
                for (t, d) in dst[..cols].iter_mut().enumerate() {
                    *d = b.data[at + t * b.cs];
                }
            }
            dst[cols..].fill(0.0);
        }
    }
}

/// A(i0..i0 + mc, k0..k0 + kc) into panels of MR rows, each kc columns of MR values; the rows past
/// `mc` are zeros.
fn pack_a(p: &Problem, i0: usize, mc: usize, k0: usize, kc: usize, pa: &mut [f32]) {
    let a = p.a;
    for (ip, panel) in pa.chunks_exact_mut(kc * MR).take(mc.div_ceil(MR)).enumerate() {
        let i = i0 + ip * MR;
        let rows = MR.min(i0 + mc - i);
        for r in 0..MR {
            if r < rows {
                let at = (i + r) * a.rs + k0 * a.cs;
                if a.cs == 1 {
                    for (q, &x) in a.data[at..at + kc].iter().enumerate() {
                        panel[q * MR + r] = x;
                    }
                } else {
                    for q in 0..kc {
                        panel[q * MR + r] = a.data[at + q * a.cs];
                    }
                }
            } else {
                for q in 0..kc {
                    panel[q * MR + r] = 0.0;
                }
            }
        }
    }
}

/// The register tile: C[rows x cols] (=, with the bias, when `first`; else +=) the kc-deep product
/// of one A panel and one B panel.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn tile(kc: usize, pa: *const f32, pb: *const f32, c: *mut f32, ldc: usize, rows: usize, cols: usize, first: bool, bias: Option<*const f32>) {
    let mut acc = [[vector::zero(); 2]; MR];
    let (mut pa, mut pb) = (pa, pb);
    for _ in 0..kc {
        let b0 = vector::load(pb);
        let b1 = vector::load(pb.add(4));
        for (r, acc) in acc.iter_mut().enumerate() {
            let x = vector::splat(pa.add(r));
            acc[0] = vector::mul_add(x, b0, acc[0]);
            acc[1] = vector::mul_add(x, b1, acc[1]);
        }
        pa = pa.add(MR);
        pb = pb.add(NR);
    }
    if rows == MR && cols == NR {
        let bias = bias.map(|b| [vector::load(b), vector::load(b.add(4))]);
        for (r, acc) in acc.iter().enumerate() {
            let row = c.add(r * ldc);
            for (h, &v) in acc.iter().enumerate() {
                let at = row.add(4 * h);
                let v = match (first, bias) {
                    (true, Some(b)) => vector::add(v, b[h]),
                    (true, None) => v,
                    (false, _) => vector::add(vector::load(at), v),
                };
                vector::store(at, v);
            }
        }
        return;
    }
    // an edge tile: through a scratch tile, only its rows x cols written
    let mut t = [0f32; MR * NR];
    for (r, acc) in acc.iter().enumerate() {
        vector::store(t.as_mut_ptr().add(r * NR), acc[0]);
        vector::store(t.as_mut_ptr().add(r * NR + 4), acc[1]);
    }
    for r in 0..rows {
        for j in 0..cols {
            let at = c.add(r * ldc + j);
            let v = t[r * NR + j];
            *at = if first { v + bias.map_or(0.0, |b| *b.add(j)) } else { *at + v };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u64) -> Vec<f32> {
        crate::cpu::test_values(n, seed, 1.0)
    }

    /// The definition in f64.
    #[allow(clippy::too_many_arguments)]
    fn reference(m: usize, n: usize, k: usize, a: Mat, b: Mat, bias: Option<&[f32]>) -> Vec<f64> {
        let mut c = vec![0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = bias.map_or(0.0, |b| b[j] as f64);
                for p in 0..k {
                    s += a.data[i * a.rs + p * a.cs] as f64 * b.data[p * b.rs + j * b.cs] as f64;
                }
                c[i * n + j] = s;
            }
        }
        c
    }

    /// Every shape class: edges in m and n (not multiples of MR, NR, MC), depths over KC and not a
    /// multiple of it, k = 0, one row and fewer than VECTOR_ROWS (the matrix-vector loops, B
    /// row-major and column-major, column counts under and over VECTOR_COLS), strided and transposed operands, a bias, a row stride in C
    /// with elements between rows that must stay untouched. Tolerance: the sum of |a b| over the
    /// depth times 1e-6 (f32 rounding over at most a few hundred terms per block, summed in
    /// another order than f64's).
    #[test]
    fn matches_the_definition() {
        let shapes = [(1, 1, 1), (4, 8, 16), (5, 9, 3), (70, 35, 300), (64, 512, 600), (3, 17, 0), (130, 8, 257), (1, 100, 700), (2, 64, 33), (3, 40, 20)];
        for (si, &(m, n, k)) in shapes.iter().enumerate() {
            for &(a_t, b_t, with_bias, ldc_extra) in &[(false, false, false, 0), (false, false, true, 3), (true, true, true, 0), (false, true, false, 5)] {
                let av = values(m * k + 7, si as u64 * 4 + 1);
                let bv = values(k * n + 7, si as u64 * 4 + 2);
                let bias = values(n, si as u64 * 4 + 3);
                // a transposed operand: stored column-major (rs 1, cs = rows)
                let a = if a_t { Mat { data: &av, rs: 1, cs: m } } else { Mat::rows(&av, k) };
                let b = if b_t { Mat { data: &bv, rs: 1, cs: k } } else { Mat::rows(&bv, n) };
                let ldc = n + ldc_extra;
                let mut c = vec![f32::NAN; m.max(1) * ldc];
                let bias = with_bias.then_some(&bias[..]);
                matmul(m, n, k, a, b, &mut c, ldc, bias, true);
                let want = reference(m, n, k, a, b, bias);
                for i in 0..m {
                    for j in 0..ldc {
                        let got = c[i * ldc + j];
                        if j >= n {
                            assert!(got.is_nan(), "{m}x{n}x{k}: element ({i}, {j}) between rows was written");
                            continue;
                        }
                        let scale: f64 = (0..k).map(|p| (a.data[i * a.rs + p * a.cs] as f64 * b.data[p * b.rs + j * b.cs] as f64).abs()).sum();
                        let tol = 1e-6 * scale.max(1.0);
                        let w = want[i * n + j];
                        assert!((got as f64 - w).abs() <= tol, "{m}x{n}x{k} (a_t {a_t}, b_t {b_t}, bias {with_bias}): ({i}, {j}) {got} vs {w}");
                    }
                }
            }
        }
    }

    /// A product split over tasks gives the serial product bit for bit (each element's sum is
    /// taken in the same order whichever task computes it): the packed loops and the
    /// matrix-vector ones (one row, over VECTOR_PARALLEL elements of B), B row- and column-major.
    #[test]
    fn parallel_split_is_exact() {
        for (m, n, k) in [(600, 1100, 300), (1, 1100, 300)] {
            let a = values(m * k, 11);
            let b = values(k * n, 12);
            let bias = values(n, 13);
            for b_t in [false, true] {
                let bm = if b_t { Mat { data: &b, rs: 1, cs: k } } else { Mat::rows(&b, n) };
                let mut serial = vec![0f32; m * n];
                let mut par = vec![0f32; m * n];
                matmul(m, n, k, Mat::rows(&a, k), bm, &mut serial, n, Some(&bias), false);
                matmul(m, n, k, Mat::rows(&a, k), bm, &mut par, n, Some(&bias), true);
                assert!(serial.iter().zip(&par).all(|(x, y)| x.to_bits() == y.to_bits()), "{m}x{n}x{k} b_t {b_t}");
            }
        }
    }

    #[test]
    #[should_panic(expected = "B is too short")]
    fn short_operand_is_refused() {
        let a = vec![0f32; 6];
        let b = vec![0f32; 5];
        let mut c = vec![0f32; 6];
        matmul(2, 3, 3, Mat::rows(&a, 3), Mat::rows(&b, 3), &mut c, 3, None, false);
    }
}
