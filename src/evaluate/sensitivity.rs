//! What ZOO's sensitivity follows, per proxy, scene by scene (`evaluate --sensitivity`).

use super::report::markdown;
use super::*;

/// What ZOO's sensitivity measures, per proxy: on each scene, Spearman's rho of the sensitivity
/// with the feature norm (the L2 norm of a token's patches before post_layernorm) and with
/// rms(1 / sigma) (what a LayerNorm's Jacobian scales with), and the milliseconds the
/// sensitivity took.
pub struct SensitivityStudy {
    pub split: Split,
    pub scenes: usize,
    pub proxies: Vec<String>,
    /// rho[proxy][scene] with the feature norm / with rms(1 / sigma); None where a side is constant
    pub rho_norm: Vec<Vec<Option<f64>>>,
    pub rho_inv_sigma: Vec<Vec<Option<f64>>>,
    pub ms: Vec<Vec<f64>>,
}

/// Mean, standard deviation, min and max of the values that exist.
fn summarise(v: &[Option<f64>]) -> (f64, f64, f64, f64, usize) {
    let x: Vec<f64> = v.iter().flatten().copied().collect();
    let n = x.len().max(1) as f64;
    let mean = x.iter().sum::<f64>() / n;
    let sd = (x.iter().map(|a| (a - mean) * (a - mean)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
    let lo = x.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (mean, sd, lo, hi, x.len())
}

impl SensitivityStudy {
    /// Markdown: one row per proxy: rho with the norm and with rms(1 / sigma) (mean ± sd over the
    /// scenes, min..max) and the sensitivity's median milliseconds per image.
    pub fn table(&self) -> String {
        let head: Vec<String> = [
            "proxy",
            "rho(S, feature norm): mean ± sd [min, max]",
            "rho(S, rms 1/sigma): mean ± sd [min, max]",
            "ms per image (median)",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let rows = self.proxies.iter().enumerate().map(|(p, name)| {
            let f = |v: &[Option<f64>]| {
                let (m, sd, lo, hi, n) = summarise(v);
                let missing = self.scenes - n;
                format!("{m:+.3} ± {sd:.3} [{lo:+.3}, {hi:+.3}]{}", if missing > 0 { format!(" ({missing} constant)") } else { String::new() })
            };
            let mut ms = self.ms[p].clone();
            ms.sort_by(f64::total_cmp);
            vec![name.clone(), f(&self.rho_norm[p]), f(&self.rho_inv_sigma[p]), format!("{:.1}", ms.get(ms.len() / 2).copied().unwrap_or(f64::NAN))]
        });
        markdown(&head, rows)
    }

    pub fn to_json(&self) -> serde_json::Value {
        let rows: Vec<serde_json::Value> = self
            .proxies
            .iter()
            .enumerate()
            .map(|(p, name)| {
                let (m1, sd1, lo1, hi1, n1) = summarise(&self.rho_norm[p]);
                let (m2, sd2, lo2, hi2, n2) = summarise(&self.rho_inv_sigma[p]);
                serde_json::json!({
                    "proxy": name,
                    "rho_feature_norm": {"mean": m1, "sd": sd1, "min": lo1, "max": hi1, "scenes": n1},
                    "rho_rms_inv_sigma": {"mean": m2, "sd": sd2, "min": lo2, "max": hi2, "scenes": n2},
                    "ms_per_image": self.ms[p],
                })
            })
            .collect();
        serde_json::json!({"split": format!("{:?}", self.split), "scenes": self.scenes, "proxies": rows})
    }
}

/// Runs the study on scenes `0..scenes` of `split` for each (label, ZOO parameters).
pub fn sensitivity_study(
    vlm: &Vlm,
    data: &DataSource,
    split: Split,
    scenes: usize,
    proxies: &[(String, crate::prune::ZooParams)],
    mut progress: impl FnMut(usize, usize),
) -> Result<SensitivityStudy> {
    use crate::prune::agreement::spearman_scores;
    use crate::prune::{scores, zoo, Proxy};
    use crate::readback::read_floats;
    let mut study = SensitivityStudy {
        split,
        scenes,
        proxies: proxies.iter().map(|(l, _)| l.clone()).collect(),
        rho_norm: vec![Vec::new(); proxies.len()],
        rho_inv_sigma: vec![Vec::new(); proxies.len()],
        ms: vec![Vec::new(); proxies.len()],
    };
    for i in 0..scenes {
        let ex = data.example(split, i as u64)?;
        let encoded = encode_for_pruning(vlm, &scene_image(&ex.scene))?;
        let ids = vlm.prompt_ids(&ex.qa.question, &encoded.processed)?;
        let q_ids = vlm.tokenizer.question_ids(&ex.qa.question)?;
        let inputs = PruneInputs::new(&vlm.model, &encoded.tiles, vlm.config.image_token_id, &ids, &q_ids);
        let norm = pollster::block_on(scores::feature_norm(&inputs))?;
        let inv_sigma = pollster::block_on(scores::inv_sigma_rms(&inputs))?;
        for (p, (_, params)) in proxies.iter().enumerate() {
            let input = if params.proxy == Proxy::LastMlp { &encoded.tiles.pre_mlp } else { &encoded.tiles.pre_ln };
            let start = std::time::Instant::now();
            let s: Vec<f64> = pollster::block_on(read_floats(zoo::sensitivity(&vlm.model, input, params)))?
                .into_iter()
                .map(|v| v as f64)
                .collect();
            study.ms[p].push(start.elapsed().as_secs_f64() * 1e3);
            study.rho_norm[p].push(spearman_scores(&s, &norm));
            study.rho_inv_sigma[p].push(spearman_scores(&s, &inv_sigma));
        }
        progress(i + 1, scenes);
    }
    Ok(study)
}
