//! Accuracy against keep ratio for every pruning method, on held-out synthetic scenes (issue 5):
//! the project's small version of the seeds' tables. Native only (it blocks on the answers).
//!
//! Protocol: scene `i` of a split with the question [`crate::builtin::DataSource::example`] samples
//! for it (the protocol of the test-split accuracy); the image is encoded once, every method ranks
//! its visual tokens once, and each keep ratio is a prefix of that ranking (`budget(n, ratio)`
//! tokens); the answer is the greedy answer from the kept tokens only, compared exactly with the
//! scene's answer.
//!
//! Every accuracy comes with its 95 % interval (Wilson), and ZOO-Prune is compared with every other
//! row of the same positions at every budget by McNemar's exact test on the same scenes.

use std::collections::BTreeMap;

use crate::builtin::{scene_image, DataSource};
use crate::error::Result;
use crate::accuracy::{answer_scene, MatchRule, Question, Row};
use crate::pipeline::EncodedImage;
use crate::prune::{budget, PruneInputs};
use crate::scenes::Split;
use crate::stats::{mcnemar_exact, wilson95};
use crate::Vlm;

mod report;
mod scene_files;
mod sensitivity;
pub use scene_files::{write_eval_scenes, write_scene_samples};
pub use sensitivity::{sensitivity_study, SensitivityStudy};

/// Encodes an image with the attention maps VisionZip needs (the last encoder layer's).
pub fn encode_for_pruning(vlm: &Vlm, img: &crate::preprocess::RgbImage) -> Result<EncodedImage> {
    let processed = vlm.preprocess(img, None)?;
    let last = vlm.config.vision_config.num_hidden_layers - 1;
    pollster::block_on(vlm.encode(processed, &[last]))
}

pub struct Evaluation {
    pub split: Split,
    pub scenes: usize,
    pub ratios: Vec<f64>,
    pub methods: Vec<String>,
    /// Visual tokens per image.
    pub tokens: usize,
    /// correct[method][ratio]
    pub correct: Vec<Vec<usize>>,
    /// right[method][ratio][scene]: whether that answer was right (the paired tests need it)
    pub right: Vec<Vec<Vec<bool>>>,
    /// Per question kind: (scenes, correct[method][ratio]).
    pub by_kind: BTreeMap<&'static str, (usize, Vec<Vec<usize>>)>,
    pub seconds: f64,
}

impl Evaluation {
    pub fn accuracy(&self, m: usize, r: usize) -> f64 {
        100.0 * self.correct[m][r] as f64 / self.scenes.max(1) as f64
    }

    /// The 95 % interval of `accuracy(m, r)` in % (Wilson).
    pub fn interval(&self, m: usize, r: usize) -> (f64, f64) {
        let (lo, hi) = wilson95(self.correct[m][r], self.scenes);
        (100.0 * lo, 100.0 * hi)
    }

    /// ZOO-Prune against every other row with the same positions, at every budget: McNemar's
    /// exact test on the scenes both answered. ZOO's row is the one labelled "zoo" (with its
    /// positions suffix when both are evaluated).
    pub fn paired_tests(&self) -> Vec<PairedTest> {
        let mut out = Vec::new();
        for (z, zl) in self.methods.iter().enumerate() {
            let (zname, zpos) = split_label(zl);
            if zname != "zoo" {
                continue;
            }
            for (o, ol) in self.methods.iter().enumerate() {
                let (_, opos) = split_label(ol);
                if o == z || opos != zpos {
                    continue;
                }
                for r in 0..self.ratios.len() {
                    let (a, b) = (&self.right[z][r], &self.right[o][r]);
                    let zoo_only = a.iter().zip(b).filter(|(x, y)| **x && !**y).count();
                    let other_only = a.iter().zip(b).filter(|(x, y)| !**x && **y).count();
                    out.push(PairedTest {
                        zoo: zl.clone(),
                        other: ol.clone(),
                        ratio: self.ratios[r],
                        zoo_only,
                        other_only,
                        p: mcnemar_exact(zoo_only, other_only),
                    });
                }
            }
        }
        out
    }
}

/// "zoo (renumber)" -> ("zoo", "renumber"); "zoo" -> ("zoo", "").
fn split_label(label: &str) -> (String, String) {
    match label.rsplit_once(" (") {
        Some((m, p)) if p.ends_with(')') => (m.to_string(), p.trim_end_matches(')').to_string()),
        _ => (label.to_string(), String::new()),
    }
}

/// One paired comparison: at `ratio`, the scenes only ZOO answered right and those only the other
/// row did, and McNemar's exact p.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PairedTest {
    pub zoo: String,
    pub other: String,
    pub ratio: f64,
    pub zoo_only: usize,
    pub other_only: usize,
    pub p: f64,
}

/// Runs the evaluation on scenes `0..scenes` of `split`; `progress(done, total)` after each scene.
pub fn evaluate(
    vlm: &Vlm,
    data: &DataSource,
    split: Split,
    scenes: usize,
    ratios: &[f64],
    rows: &[Row],
    mut progress: impl FnMut(usize, usize),
) -> Result<Evaluation> {
    let methods = rows;
    let start = std::time::Instant::now();
    let mut correct = vec![vec![0usize; ratios.len()]; methods.len()];
    let mut right = vec![vec![Vec::with_capacity(scenes); ratios.len()]; methods.len()];
    let mut by_kind: BTreeMap<&'static str, (usize, Vec<Vec<usize>>)> = BTreeMap::new();
    let mut tokens = 0;
    let zoo_plans = crate::prune::zoo::PlanCache::default();
    for i in 0..scenes {
        let ex = data.example(split, i as u64)?;
        let question = Question { text: &ex.qa.question, expected: &ex.qa.answer, rule: MatchRule::Exact };
        let scene = pollster::block_on(answer_scene(vlm, Some(&zoo_plans), &scene_image(&ex.scene), None, &question, rows, ratios, 4, |_, _| {
            std::future::ready(true)
        }))?
        .expect("go_on never stops it");
        tokens = scene.tokens;
        let kind = by_kind
            .entry(ex.qa.kind.name())
            .or_insert_with(|| (0, vec![vec![0usize; ratios.len()]; methods.len()]));
        kind.0 += 1;
        for (m, oks) in scene.right.iter().enumerate() {
            for (r, &ok) in oks.iter().enumerate() {
                right[m][r].push(ok);
                if ok {
                    correct[m][r] += 1;
                    kind.1[m][r] += 1;
                }
            }
        }
        progress(i + 1, scenes);
    }
    Ok(Evaluation {
        split,
        scenes,
        ratios: ratios.to_vec(),
        methods: rows.iter().map(|r| r.label.clone()).collect(),
        tokens,
        correct,
        right,
        by_kind,
        seconds: start.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paired_tests_count_the_discordant_scenes_of_rows_with_the_same_positions() {
        let (t, f) = (true, false);
        // 6 scenes, one budget; zoo right on 0-3, divprune (keep) right on 2-5, divprune
        // (renumber) right everywhere
        let ev = Evaluation {
            split: Split::Test,
            scenes: 6,
            ratios: vec![0.5],
            methods: vec!["zoo (keep)".into(), "divprune (keep)".into(), "divprune (renumber)".into()],
            tokens: 64,
            correct: vec![vec![4], vec![4], vec![6]],
            right: vec![vec![vec![t, t, t, t, f, f]], vec![vec![f, f, t, t, t, t]], vec![vec![t; 6]]],
            by_kind: BTreeMap::new(),
            seconds: 0.0,
        };
        let tests = ev.paired_tests();
        // only divprune (keep) is paired with zoo (keep): the renumbered row has other positions
        assert_eq!(tests.len(), 1, "{tests:?}");
        let p = &tests[0];
        assert_eq!((p.other.as_str(), p.zoo_only, p.other_only), ("divprune (keep)", 2, 2));
        assert_eq!(p.p, 1.0);
        // the table says a tie as +0.0 with p 1.000, not bold
        assert!(ev.paired_table().contains("| divprune (keep) | +0.0 (p 1.000) |"), "{}", ev.paired_table());
        // the intervals are Wilson's for 4 of 6, in % (29.99 to 90.32, worked by hand)
        let (lo, hi) = ev.interval(0, 0);
        assert!((lo - 29.99).abs() < 0.02 && (hi - 90.32).abs() < 0.02, "{lo} {hi}");
    }
}
