//! The statistics an accuracy table needs: a 95 % interval for a proportion (Wilson's score
//! interval) and an exact paired test of two methods answering the same questions (McNemar's, the
//! two-sided binomial test on the discordant pairs).

/// The 0.975 quantile of the standard normal distribution.
const Z95: f64 = 1.959_963_984_540_054;

/// Wilson's 95 % score interval for `k` successes in `n` trials, as fractions in [0, 1]. Unlike
/// p ± 1.96 sqrt(p (1 - p) / n) it stays inside [0, 1] and is not empty at k = 0 or k = n.
/// (0, 1) when n = 0.
pub fn wilson95(k: usize, n: usize) -> (f64, f64) {
    assert!(k <= n, "{k} successes in {n} trials");
    if n == 0 {
        return (0.0, 1.0);
    }
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let z2 = Z95 * Z95;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = Z95 / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// McNemar's exact test: `b` questions only the first method answered right, `c` only the second.
/// Under "the methods are equally accurate" each discordant question is a fair coin, so the
/// two-sided p-value is 2 P(X <= min(b, c)) for X ~ Binomial(b + c, 1/2), capped at 1; 1 when
/// there is no discordant question. Summed in log space, exact for any count.
pub fn mcnemar_exact(b: usize, c: usize) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let k = b.min(c);
    // ln C(n, i) - n ln 2, i = 0..=k, summed with the largest term factored out
    let mut ln_terms = Vec::with_capacity(k + 1);
    let mut ln_choose = 0f64;
    for i in 0..=k {
        if i > 0 {
            ln_choose += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        ln_terms.push(ln_choose - n as f64 * std::f64::consts::LN_2);
    }
    let top = ln_terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let tail = top.exp() * ln_terms.iter().map(|t| (t - top).exp()).sum::<f64>();
    (2.0 * tail).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_published_values() {
        // Newcombe (1998), Table I, method 3 (score interval without continuity correction):
        // 81/263 -> 0.2553 to 0.3662; 15/148 -> 0.0624 to 0.1605; 0/20 -> 0 to 0.1611
        for (k, n, lo, hi) in [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611)] {
            let (a, b) = wilson95(k, n);
            assert!((a - lo).abs() < 5e-5 && (b - hi).abs() < 5e-5, "{k}/{n}: ({a}, {b}) vs ({lo}, {hi})");
        }
        // symmetric: k and n - k mirror each other
        let (a, b) = wilson95(20, 20);
        assert!((a - (1.0 - 0.1611)).abs() < 5e-5 && b == 1.0);
        // at 1000 scenes and 80 % the half-width is about 2.5 points (the figure)
        let (a, b) = wilson95(800, 1000);
        assert!(((b - a) / 2.0 - 0.0248).abs() < 5e-4, "{a} {b}");
        assert_eq!(wilson95(0, 0), (0.0, 1.0));
    }

    #[test]
    fn mcnemar_is_the_two_sided_binomial_tail() {
        // b = 10, c = 2: 2 (C(12,0) + C(12,1) + C(12,2)) / 2^12 = 2 * 79 / 4096
        assert!((mcnemar_exact(10, 2) - 158.0 / 4096.0).abs() < 1e-15);
        assert_eq!(mcnemar_exact(2, 10), mcnemar_exact(10, 2));
        // b = 5, c = 0: 2 / 32
        assert!((mcnemar_exact(5, 0) - 0.0625).abs() < 1e-15);
        // balanced: the tail passes one half, capped at 1
        assert_eq!(mcnemar_exact(7, 7), 1.0);
        assert_eq!(mcnemar_exact(0, 0), 1.0);
        // large counts stay finite and tiny (0.5^2000 underflows a plain product)
        let p = mcnemar_exact(2000, 0);
        assert!(p == 0.0 || p < 1e-300);
        let p = mcnemar_exact(600, 500);
        // normal approximation: z = 100 / sqrt(1100) = 3.015, two-sided 0.0026
        assert!(p > 0.0015 && p < 0.004, "{p}");
    }
}
