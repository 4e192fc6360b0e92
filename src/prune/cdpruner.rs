//! CDPruner (Zhang et al., NeurIPS 2025, "Beyond Attention or Similarity: Maximizing Conditional
//! Diversity for Token Pruning in MLLMs"; code Theia-4869/CDPruner): keep the visual tokens that
//! maximise the determinant of a conditional kernel L = diag(r) S diag(r), where S is the cosine
//! similarity of the tokens and r their relevance to the question, by greedy MAP inference of the
//! determinantal point process (Chen et al. 2018: an incremental Cholesky factorisation).
//!
//! Mapped onto SmolVLM: S is the cosine of the tokens the decoder receives (the connector's
//! output, as the official code uses the projector's output); the question side is the decoder's
//! own input embeddings of the question's tokens (the official code uses CLIP's text encoder,
//! which Idefics3 does not have). The numpy port in tests/pruning_reference/reference.py
//! (`cdpruner_relevance`, `cdpruner_order`) is the reference; the tests compare picks exactly.

use super::select::{unit_rows, Step};

/// The sign of the relevance. The official code negates the mean cosine before normalising
/// (`relevance = (-relevance).mean(dim=-1)`): with CLIP features the least text-like image tokens
/// count as the most relevant. `Plain` keeps the sign (tokens like the question rank first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelevanceSign {
    Negated,
    Plain,
}

impl RelevanceSign {
    /// The sign the method uses unless told otherwise (chosen on the built-in model: README,
    /// "CDPruner's relevance sign").
    pub const DEFAULT: Self = Self::Negated;

    pub const NAMES: &'static [&'static str] = &["negated", "plain"];

    pub fn name(self) -> &'static str {
        match self {
            Self::Negated => "negated",
            Self::Plain => "plain",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "negated" => Some(Self::Negated),
            "plain" => Some(Self::Plain),
            _ => None,
        }
    }
}

/// Relevance of each token `z` [n, d] to the question's token embeddings `q` [m, d]: the mean over
/// the question's tokens of the cosine (negated or not), min-max normalised over all n tokens to
/// (0, 1]: (a - min + 1e-6) / (max - min + 1e-6). The official divisor is (max - min); the two
/// differ by a constant factor, which scales the kernel and changes no pick. All ones when every
/// token is equally relevant. Sums are sequential (the reference's bits).
pub fn relevance(z: &[f64], q: &[f64], d: usize, sign: RelevanceSign) -> Vec<f64> {
    assert!(d > 0 && z.len() % d == 0 && q.len() % d == 0 && !q.is_empty());
    let (nz, nq) = (unit_rows(z, d), unit_rows(q, d));
    let m = q.len() / d;
    let a: Vec<f64> = nz
        .chunks_exact(d)
        .map(|zi| {
            let mut sum = 0f64;
            for qk in nq.chunks_exact(d) {
                let mut dot = 0f64;
                for k in 0..d {
                    dot += zi[k] * qk[k];
                }
                sum += dot;
            }
            let mean = sum / m as f64;
            match sign {
                RelevanceSign::Negated => -mean,
                RelevanceSign::Plain => mean,
            }
        })
        .collect();
    let lo = a.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    a.iter().map(|&v| (v - lo + 1e-6) / ((hi - lo) + 1e-6)).collect()
}

/// A pick whose residual is at most this fraction of its own kernel diagonal lies, to rounding, in
/// the span of the round's picks (see [`order`]).
pub const REL_TOL: f64 = 1e-9;

/// The full greedy MAP order of the DPP with kernel L_ij = (r_i S_ij) r_j, S = `cos` [n, n].
///
/// The official loop: residuals d2 = diag(L); each pick j = argmax d2 (the lowest index on ties);
/// e = (L[j, :] - sum_t c_t[j] c_t[:]) / sqrt(d2[j]); d2 -= e^2; j is never picked again. The
/// official code stops at the budget; for a full ranking it would take the square root of rounding
/// noise once the kernel's rank is used up (more tokens than dimensions, duplicate tokens). So once
/// the best residual is at most [`REL_TOL`] of its token's diagonal a new round starts: the
/// factors are dropped and the residuals reset to diag(L) for the tokens left. The first round's
/// picks are the official ones. Each step records the residual gain (`score`), the relevance
/// (`weight`) and the gain divided by relevance squared (`distance`: the part of the similarity
/// kernel not explained by the round's picks, 1 for a token orthogonal to them).
pub fn order(r: &[f64], cos: &[f64]) -> Vec<Step> {
    let n = r.len();
    assert_eq!(cos.len(), n * n);
    let kernel = |i: usize, j: usize| (r[i] * cos[i * n + j]) * r[j];
    let diag: Vec<f64> = (0..n).map(|i| kernel(i, i)).collect();
    let mut d2 = diag.clone();
    let mut picked = vec![false; n];
    // the Cholesky rows of this round's picks, each of length n
    let mut factors: Vec<Vec<f64>> = Vec::new();
    let mut steps = Vec::with_capacity(n);
    let mut fresh = true;
    while steps.len() < n {
        let mut best: Option<usize> = None;
        for i in 0..n {
            if !picked[i] && best.is_none_or(|b| d2[i] > d2[b]) {
                best = Some(i);
            }
        }
        let j = best.expect("a token is left");
        let gain = d2[j];
        if !fresh && !(gain > REL_TOL * diag[j]) {
            factors.clear();
            d2.copy_from_slice(&diag);
            fresh = true;
            continue;
        }
        let distance = if r[j] > 0.0 { gain / (r[j] * r[j]) } else { f64::NAN };
        steps.push(Step { token: j, score: gain, weight: r[j], distance });
        picked[j] = true;
        if gain > 0.0 {
            let root = gain.sqrt();
            let e: Vec<f64> = (0..n)
                .map(|i| {
                    let mut proj = 0f64;
                    for c in &factors {
                        proj += c[j] * c[i];
                    }
                    (kernel(j, i) - proj) / root
                })
                .collect();
            for i in 0..n {
                d2[i] -= e[i] * e[i];
            }
            factors.push(e);
        }
        fresh = false;
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prune::select::cosine_matrix;

    fn tokens(steps: &[Step]) -> Vec<usize> {
        steps.iter().map(|s| s.token).collect()
    }

    #[test]
    fn relevance_lies_in_0_1_and_follows_the_sign() {
        let z = [1.0, 0.0, 0.0, 1.0, 0.7, 0.7];
        let q = [1.0, 0.1];
        let plain = relevance(&z, &q, 2, RelevanceSign::Plain);
        let neg = relevance(&z, &q, 2, RelevanceSign::Negated);
        assert!(plain.iter().chain(&neg).all(|&v| v > 0.0 && v <= 1.0), "{plain:?} {neg:?}");
        // token 0 is nearly the question: most relevant plain, least relevant negated
        assert_eq!(plain[0], 1.0);
        assert!(neg[0] < 1e-5 && neg[1] == 1.0, "{neg:?}");
        // equally relevant tokens: all ones
        assert_eq!(relevance(&[1.0, 0.0, 2.0, 0.0], &q, 2, RelevanceSign::Plain), vec![1.0, 1.0]);
    }

    #[test]
    fn relevant_first_then_diverse() {
        // 0 and 1 nearly the same direction, 2 orthogonal; 0 most relevant (three dimensions, so
        // that token 1 keeps a small residual after 0 and 2 and no new round starts)
        let z = [1.0, 0.0, 0.0, 1.0, 0.01, 0.01, 0.0, 1.0, 0.0];
        let cos = cosine_matrix(&z, 3, 3);
        let steps = order(&[1.0, 0.9, 0.5], &cos);
        // 0 first (gain 1); then 2 (gain .25, orthogonal) beats 1 (.81 * (1 - cos^2) ~ 1.6e-4);
        // 1 last, its residual the part along the third axis: .01^2 / 1.0002 of its diagonal
        assert_eq!(tokens(&steps), vec![0, 2, 1]);
        assert_eq!(steps[0].score, 1.0);
        assert!((steps[1].score - 0.25).abs() < 1e-12 && (steps[1].distance - 1.0).abs() < 1e-12);
        assert!((steps[2].distance - 1e-4 / 1.0002).abs() < 1e-9, "{steps:?}");
    }

    #[test]
    fn duplicates_and_more_tokens_than_dimensions_start_new_rounds() {
        // 5 tokens in 2 dimensions, token 3 a duplicate of token 0: rank 2, so after two picks
        // every residual is rounding noise and a new round starts; the order stays a permutation
        let z = [1.0, 0.0, 0.0, 1.0, 0.6, 0.8, 1.0, 0.0, -0.6, 0.8];
        let cos = cosine_matrix(&z, 5, 2);
        let r = [1.0, 0.99, 0.98, 0.97, 0.96];
        let steps = order(&r, &cos);
        // 0, then 1 (orthogonal); every residual is then noise: a new round from the most relevant
        // token left (2, gain = its full diagonal r^2), then 4 (cos .28 with 2) before 3 (cos .6),
        // and 3, in the span of {2, 4}, in a third round
        assert_eq!(tokens(&steps), vec![0, 1, 2, 4, 3]);
        assert!((steps[2].score - 0.98 * 0.98).abs() < 1e-12, "{steps:?}");
        assert!((steps[3].distance - (1.0 - 0.28 * 0.28)).abs() < 1e-12, "{steps:?}");
        assert!((steps[4].score - 0.97 * 0.97).abs() < 1e-12, "{steps:?}");
        assert!(steps.iter().all(|s| s.score.is_finite()));
    }

    #[test]
    fn a_zero_token_is_ranked_without_nan() {
        let z = [1.0, 0.0, 0.0, 0.0, 0.0, 1.0];
        let cos = cosine_matrix(&z, 3, 2);
        let steps = order(&[1.0, 1.0, 1.0], &cos);
        assert_eq!(tokens(&steps), vec![0, 2, 1]);
        assert_eq!(steps[2].score, 0.0);
    }
}
