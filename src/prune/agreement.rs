//! How two rankings of the same visual tokens agree, for teaching: Spearman's rank correlation
//! (a replication claimed ZOO-Prune ranks almost like the feature norm; on a given model this
//! says whether it does) and, for every budget k, how many of the k tokens two methods keep are
//! the same. Computed once per pair of rankings; a slider move only reads `overlap[k - 1]`.

/// Spearman's rho between two keep orders (permutations of 0..n): 1 - 6 sum d^2 / (n (n^2 - 1)),
/// d = the difference of a token's places. Exact (no ties in an order). NaN when n < 2.
pub fn spearman_orders(a: &[usize], b: &[usize]) -> f64 {
    let n = a.len();
    assert_eq!(n, b.len(), "orders of different lengths");
    if n < 2 {
        return f64::NAN;
    }
    let place = |o: &[usize]| {
        let mut p = vec![0usize; n];
        for (i, &t) in o.iter().enumerate() {
            p[t] = i;
        }
        p
    };
    let (pa, pb) = (place(a), place(b));
    let d2: f64 = (0..n).map(|t| (pa[t] as f64 - pb[t] as f64).powi(2)).sum();
    let n = n as f64;
    1.0 - 6.0 * d2 / (n * (n * n - 1.0))
}

/// Spearman's rho between two score vectors (average ranks for ties: Pearson correlation of the
/// ranks). None when a score is not finite or either vector is constant.
pub fn spearman_scores(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() != b.len() || a.len() < 2 || a.iter().chain(b).any(|v| !v.is_finite()) {
        return None;
    }
    let ranks = |v: &[f64]| {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
        let mut r = vec![0f64; v.len()];
        let mut i = 0;
        while i < idx.len() {
            let mut j = i;
            while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
                j += 1;
            }
            let avg = (i + j) as f64 / 2.0;
            for &k in &idx[i..=j] {
                r[k] = avg;
            }
            i = j + 1;
        }
        r
    };
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb).powi(2)).sum();
    (va > 0.0 && vb > 0.0).then(|| cov / (va * vb).sqrt())
}

/// For k = 1..=n, how many tokens the first k of `a` and the first k of `b` share (O(n)).
pub fn overlap_curve(a: &[usize], b: &[usize]) -> Vec<usize> {
    let n = a.len();
    assert_eq!(n, b.len(), "orders of different lengths");
    let mut seen = vec![0u8; n];
    let mut shared = 0;
    let mut out = Vec::with_capacity(n);
    for k in 0..n {
        for t in [a[k], b[k]] {
            seen[t] += 1;
            if seen[t] == 2 {
                shared += 1;
            }
        }
        out.push(shared);
    }
    out
}
