//! Greedy selection loops on the CPU in f64: sensitivity-aware diversity selection (ZOO-Prune),
//! DivPrune's max-min diversity, and prompt-aware core + diversity (after ZSPAPrune).
//!
//! Every loop runs to the end and returns the full pick order: a budget of k tokens is the
//! first k picks, so a slider never recomputes anything. Ties go to the lowest token index
//! (numpy/torch argmax semantics); tokens already picked are never picked again.

/// One greedy pick, with the quantities that decided it (for the classroom view).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Step {
    pub token: usize,
    /// The value the argmax was taken over.
    pub score: f64,
    /// Normalised sensitivity / relevance of the token (1 for methods without one).
    pub weight: f64,
    /// Its diversity when picked: min over picked j of (1 - cos(Z_i, Z_j)); 1 for the first pick.
    pub distance: f64,
}

/// Cosine similarities of the rows of `z` [n, d] in f64, as torch and the numpy reference compute
/// them: rows normalised first (by max(norm, 1e-8)), then plain sequential dot products, so the
/// result is bit-identical to tests/pruning_reference/reference.py.
pub fn cosine_matrix(z: &[f64], n: usize, d: usize) -> Vec<f64> {
    assert_eq!(z.len(), n * d);
    let unit = unit_rows(z, d);
    let mut c = vec![0f64; n * n];
    for i in 0..n {
        let ui = &unit[i * d..(i + 1) * d];
        for j in i..n {
            let uj = &unit[j * d..(j + 1) * d];
            let mut dot = 0f64;
            for k in 0..d {
                dot += ui[k] * uj[k];
            }
            c[i * n + j] = dot;
            c[j * n + i] = dot;
        }
    }
    c
}

/// Rows of `x` [n, d] divided by max(norm, 1e-8), the norm a sequential sum of squares (as torch's
/// cosine similarity and the numpy reference normalise).
pub fn unit_rows(x: &[f64], d: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks_exact(d) {
        let mut ss = 0f64;
        for &v in row {
            ss += v * v;
        }
        let norm = ss.sqrt().max(1e-8);
        out.extend(row.iter().map(|&v| v / norm));
    }
    out
}

/// Min-max normalisation as the official `select_tokens_sads`: (s - min) / (max - min + 1e-8),
/// all ones when max == min.
pub fn minmax(s: &[f64]) -> Vec<f64> {
    let lo = s.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if hi > lo {
        s.iter().map(|v| (v - lo) / ((hi - lo) + 1e-8)).collect()
    } else {
        vec![1.0; s.len()]
    }
}

/// Adds a picked token (its cosine row) to every token's distance to the picked set:
/// dist[j] = min(dist[j], 1 - cos(picked, j)).
fn absorb(dist: &mut [f64], cos_row: &[f64]) {
    for (d, c) in dist.iter_mut().zip(cos_row) {
        *d = d.min(1.0 - c);
    }
}

/// Index of the maximum of `f(i)` over unpicked i, the lowest index on ties.
fn argmax_unpicked(n: usize, picked: &[bool], f: impl Fn(usize) -> f64) -> Option<(usize, f64)> {
    let mut best: Option<(usize, f64)> = None;
    for i in 0..n {
        if picked[i] {
            continue;
        }
        let v = f(i);
        match best {
            Some((_, b)) if v <= b => {}
            _ => best = Some((i, v)),
        }
    }
    best
}

/// How ZOO-Prune fuses normalised sensitivity and diversity (the paper's Table 4 ablation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fusion {
    Multiply,
    Sum,
    /// Diversity only (first pick still the most sensitive token).
    None,
}

impl Fusion {
    pub const NAMES: &'static [&'static str] = &["multiply", "sum", "none"];

    pub fn name(self) -> &'static str {
        match self {
            Self::Multiply => "multiply",
            Self::Sum => "sum",
            Self::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "multiply" | "mul" => Some(Self::Multiply),
            "sum" | "add" => Some(Self::Sum),
            "none" => Some(Self::None),
            _ => None,
        }
    }
    fn apply(self, s: f64, d: f64) -> f64 {
        match self {
            Self::Multiply => s * d,
            Self::Sum => s + d,
            Self::None => d,
        }
    }
}

/// Sensitivity-aware diversity selection: first the most sensitive token, then repeatedly
/// argmax of fuse(S_hat(i), min_{j picked} (1 - cos(Z_i, Z_j))).
pub fn sads_order(sensitivity: &[f64], cos: &[f64], fusion: Fusion) -> Vec<Step> {
    let n = sensitivity.len();
    assert_eq!(cos.len(), n * n);
    let s = minmax(sensitivity);
    let mut picked = vec![false; n];
    // min over picked j of (1 - cos): +inf while nothing is picked (Div = 1 is then irrelevant:
    // the first pick is argmax S_hat); values can exceed 1 for opposite directions.
    let mut dist = vec![f64::INFINITY; n];
    let mut steps = Vec::with_capacity(n);
    // first pick: argmax S_hat (Div = 1 for every token when nothing is picked)
    let first = argmax_unpicked(n, &picked, |i| s[i]);
    let mut cur = first;
    while let Some((i, score)) = cur {
        let distance = if steps.is_empty() { 1.0 } else { dist[i] };
        steps.push(Step { token: i, score, weight: s[i], distance });
        picked[i] = true;
        absorb(&mut dist, &cos[i * n..(i + 1) * n]);
        cur = argmax_unpicked(n, &picked, |j| fusion.apply(s[j], dist[j]));
    }
    steps
}

/// DivPrune: first the token whose nearest neighbour is farthest, then max-min diversity.
pub fn divprune_order(cos: &[f64], n: usize) -> Vec<Step> {
    assert_eq!(cos.len(), n * n);
    let mut picked = vec![false; n];
    // official first pick: the SECOND smallest distance of each column, the (~0) diagonal
    // included, i.e. the distance to the nearest neighbour
    let nearest: Vec<f64> = (0..n)
        .map(|j| {
            let (mut a, mut b) = (f64::INFINITY, f64::INFINITY);
            for i in 0..n {
                let v = 1.0 - cos[i * n + j];
                if v < a {
                    b = a;
                    a = v;
                } else if v < b {
                    b = v;
                }
            }
            b
        })
        .collect();
    let mut steps = Vec::with_capacity(n);
    let mut dist = vec![f64::INFINITY; n];
    let mut cur = argmax_unpicked(n, &picked, |i| if n == 1 { 1.0 } else { nearest[i] });
    while let Some((i, score)) = cur {
        steps.push(Step { token: i, score, weight: 1.0, distance: if steps.is_empty() { 1.0 } else { dist[i] } });
        picked[i] = true;
        absorb(&mut dist, &cos[i * n..(i + 1) * n]);
        cur = argmax_unpicked(n, &picked, |j| dist[j]);
    }
    steps
}

/// Prompt-aware selection (after ZSPAPrune): a share `core_share` of every budget is the most
/// prompt-relevant tokens, the rest max-min diversity with respect to everything picked so far.
/// Made prefix-consistent by interleaving: pick t is a relevance pick while the relevance picks
/// are fewer than round(core_share * (t + 1)), else a diversity pick.
pub fn prompt_aware_order(relevance: &[f64], cos: &[f64], core_share: f64) -> Vec<Step> {
    let n = relevance.len();
    assert_eq!(cos.len(), n * n);
    let r = minmax(relevance);
    let mut picked = vec![false; n];
    let mut dist = vec![f64::INFINITY; n];
    let mut steps = Vec::with_capacity(n);
    let mut n_core = 0usize;
    for t in 0..n {
        let want_core = ((core_share * (t + 1) as f64).round() as usize).max(1);
        let (i, score, is_core) = if n_core < want_core {
            let (i, v) = argmax_unpicked(n, &picked, |i| r[i]).unwrap();
            (i, v, true)
        } else {
            let (i, v) = argmax_unpicked(n, &picked, |j| dist[j]).unwrap();
            (i, v, false)
        };
        if is_core {
            n_core += 1;
        }
        let distance = if steps.is_empty() { 1.0 } else { dist[i] };
        steps.push(Step { token: i, score, weight: r[i], distance });
        picked[i] = true;
        absorb(&mut dist, &cos[i * n..(i + 1) * n]);
    }
    steps
}

/// Order by a score, highest first (ties: lowest index; NaN scores last). A total order: NaN
/// taken as "equal to everything" is not one, and Rust's sort may panic on such a comparator.
pub fn order_by_score(scores: &[f64]) -> Vec<Step> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    // -0.0 + 0.0 = 0.0: total_cmp then agrees with partial_cmp on every non-NaN pair
    let key = |v: f64| if v.is_nan() { f64::NEG_INFINITY } else { v + 0.0 };
    idx.sort_by(|&a, &b| key(scores[b]).total_cmp(&key(scores[a])).then(a.cmp(&b)));
    let w = minmax(scores);
    idx.into_iter().map(|i| Step { token: i, score: scores[i], weight: w[i], distance: f64::NAN }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cos_of(z: &[[f32; 2]]) -> Vec<f64> {
        let flat: Vec<f64> = z.iter().flatten().map(|&v| v as f64).collect();
        cosine_matrix(&flat, z.len(), 2)
    }

    #[test]
    fn sads_picks_sensitive_then_diverse() {
        // tokens 0 and 1 point the same way, 2 is orthogonal, 3 opposite to 0
        let z = [[1.0, 0.0], [1.0, 0.01], [0.0, 1.0], [-1.0, 0.0]];
        let cos = cos_of(&z);
        let s = [0.9, 1.0, 0.5, 0.2];
        let order: Vec<usize> = sads_order(&s, &cos, Fusion::Multiply).iter().map(|p| p.token).collect();
        // first the most sensitive (1); then 2 (S_hat .375 * div .99) beats 3 (S_hat 0 * 2.0)
        // and 0 (S_hat .875 * ~0)
        assert_eq!(order[0], 1);
        assert_eq!(order[1], 2);
        assert_eq!(order.len(), 4);
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(sorted, vec![0, 1, 2, 3]);
        // without fusion the opposite token (distance 2) comes second
        let none: Vec<usize> = sads_order(&s, &cos, Fusion::None).iter().map(|p| p.token).collect();
        assert_eq!(&none[..2], &[1, 3]);
    }

    #[test]
    fn constant_sensitivity_normalises_to_ones() {
        assert_eq!(minmax(&[2.0, 2.0, 2.0]), vec![1.0, 1.0, 1.0]);
        let m = minmax(&[1.0, 3.0, 2.0]);
        assert_eq!(m[0], 0.0);
        assert!((m[1] - 1.0).abs() < 1e-8 && m[1] < 1.0 && (m[2] - 0.5).abs() < 1e-8);
    }

    #[test]
    fn divprune_first_pick_is_the_most_isolated() {
        let z = [[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0], [-1.0, -1.0]];
        let order: Vec<usize> = divprune_order(&cos_of(&z), 5).iter().map(|p| p.token).collect();
        assert_eq!(order[0], 4);
        assert_eq!(order.len(), 5);
    }

    #[test]
    fn prompt_aware_mixes_core_and_diversity() {
        let z = [[1.0, 0.0], [1.0, 0.05], [1.0, 0.1], [0.0, 1.0], [-1.0, 0.0]];
        let rel = [1.0, 0.9, 0.8, 0.0, 0.1];
        let order: Vec<usize> = prompt_aware_order(&rel, &cos_of(&z), 0.6).iter().map(|p| p.token).collect();
        // t=0: core (0); t=1: round(1.2)=1 -> diversity: farthest from 0 is 4; t=2: round(1.8)=2 core: 1
        assert_eq!(&order[..3], &[0, 4, 1]);
    }

    #[test]
    fn ties_go_to_the_lowest_index() {
        let o = order_by_score(&[1.0, 3.0, 3.0, 0.0]);
        assert_eq!(o.iter().map(|p| p.token).collect::<Vec<_>>(), vec![1, 2, 0, 3]);
    }
}
