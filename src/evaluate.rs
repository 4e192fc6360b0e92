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

    /// "82.8 (80.3-85.0)": the accuracy and its 95 % interval.
    fn cell(&self, m: usize, r: usize) -> String {
        let (lo, hi) = self.interval(m, r);
        format!("{:.1} ({lo:.1}–{hi:.1})", self.accuracy(m, r))
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

    /// Markdown: one row per comparison, one column per budget: "+3.1 (p 0.002)" is ZOO's lead in
    /// points and McNemar's p; differences that hold at 5 % are in bold.
    pub fn paired_table(&self) -> String {
        let tests = self.paired_tests();
        let mut head = vec!["zoo against".to_string()];
        head.extend(self.ratios.iter().map(|&r| format!("{} %", fmt_ratio(r))));
        let mut rows = Vec::new();
        for chunk in tests.chunks(self.ratios.len().max(1)) {
            let mut row = vec![chunk[0].other.clone()];
            for t in chunk {
                let lead = 100.0 * (t.zoo_only as f64 - t.other_only as f64) / self.scenes.max(1) as f64;
                let text = format!("{lead:+.1} (p {})", fmt_p(t.p));
                row.push(if t.p < 0.05 { format!("**{text}**") } else { text });
            }
            rows.push(row);
        }
        markdown(&head, rows.into_iter())
    }

    /// Markdown table: one row per method, one column per keep ratio (accuracy in %, with the
    /// kept token count in the header).
    pub fn table(&self) -> String {
        let mut head = vec!["method".to_string()];
        head.extend(self.ratios.iter().map(|&r| format!("{} % ({} tok)", fmt_ratio(r), budget(self.tokens, r))));
        let rows = self.methods.iter().enumerate().map(|(m, name)| {
            let mut row = vec![name.clone()];
            row.extend((0..self.ratios.len()).map(|r| self.cell(m, r)));
            row
        });
        markdown(&head, rows)
    }

    /// Markdown table of accuracy by question kind for one method (all ratios).
    pub fn kind_table(&self, m: usize) -> String {
        let mut head = vec![format!("{} by question kind", self.methods[m]), "scenes".to_string()];
        head.extend(self.ratios.iter().map(|&r| format!("{} %", fmt_ratio(r))));
        let rows = self.by_kind.iter().map(|(kind, (n, c))| {
            let mut row = vec![kind.to_string(), n.to_string()];
            row.extend((0..self.ratios.len()).map(|r| format!("{:.1}", 100.0 * c[m][r] as f64 / (*n).max(1) as f64)));
            row
        });
        markdown(&head, rows)
    }

    /// Markdown table of one question kind's accuracy for every method (all ratios).
    pub fn one_kind_table(&self, kind: &str) -> String {
        let Some((n, c)) = self.by_kind.get(kind) else { return String::new() };
        let mut head = vec![format!("{kind} questions ({n} scenes)")];
        head.extend(self.ratios.iter().map(|&r| format!("{} %", fmt_ratio(r))));
        let rows = self.methods.iter().enumerate().map(|(m, name)| {
            let mut row = vec![name.clone()];
            row.extend((0..self.ratios.len()).map(|r| format!("{:.1}", 100.0 * c[m][r] as f64 / (*n).max(1) as f64)));
            row
        });
        markdown(&head, rows)
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "split": format!("{:?}", self.split),
            "scenes": self.scenes,
            "tokens": self.tokens,
            "ratios": self.ratios,
            "methods": self.methods,
            "correct": self.correct,
            "accuracy": (0..self.methods.len())
                .map(|m| (0..self.ratios.len()).map(|r| self.accuracy(m, r)).collect::<Vec<_>>())
                .collect::<Vec<_>>(),
            "interval95": (0..self.methods.len())
                .map(|m| (0..self.ratios.len()).map(|r| { let (lo, hi) = self.interval(m, r); [lo, hi] }).collect::<Vec<_>>())
                .collect::<Vec<_>>(),
            "interval_method": "Wilson score interval, 95 %, in % (src/stats.rs)",
            "paired_tests": self.paired_tests(),
            "paired_test_method": "McNemar's exact test (two-sided binomial on the discordant scenes), ZOO against each row of the same positions",
            "by_kind": self.by_kind.iter().map(|(k, (n, c))| (k.to_string(), serde_json::json!({"scenes": n, "correct": c}))).collect::<serde_json::Map<_, _>>(),
            "seconds": self.seconds,
        })
    }

    /// A line plot of accuracy (%) against keep ratio (log2 axis), one line per method. Rows
    /// labelled "name (renumber)" / "name (keep)" are drawn in two panels side by side, a method
    /// in the same colour in both; the legend names the methods once.
    pub fn svg(&self, title: &str) -> String {
        let split = split_label;
        let mut panels: Vec<String> = vec![];
        let mut names: Vec<String> = vec![];
        for label in &self.methods {
            let (m, p) = split(label);
            if !panels.contains(&p) {
                panels.push(p);
            }
            if !names.contains(&m) {
                names.push(m);
            }
        }
        let (pw, ph) = (490.0, 350.0);
        let (l, gap, legend, t, b) = (60.0, 90.0, 170.0, 60.0, 50.0);
        let w = l + panels.len() as f64 * pw + (panels.len() - 1) as f64 * gap + legend;
        let h = t + ph + b;
        let lr: Vec<f64> = self.ratios.iter().map(|x| x.log2()).collect();
        let (xmin, xmax) = lr.iter().fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        let span = if xmax > xmin { xmax - xmin } else { 1.0 };
        let py = |acc: f64| t + (1.0 - acc / 100.0) * ph;
        // one colour per method (the first ten are matplotlib's tab10), so that no two lines share one
        const COLOURS: [&str; 16] = [
            "#d62728", "#1f77b4", "#2ca02c", "#7f7f7f", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#e377c2",
            "#bcbd22", "#000000", "#393b79", "#b5862a", "#637939", "#843c39", "#6baed6",
        ];
        let colour = |name: &str| COLOURS[names.iter().position(|n| n == name).unwrap_or(0) % COLOURS.len()];
        let width = |name: &str| if name == "zoo" { 3.0 } else { 1.5 };
        let mut s = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
             font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"{w}\" height=\"{h}\" fill=\"white\"/>\n\
             <text x=\"{:.1}\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">{}</text>\n\
             <text transform=\"translate(16 {:.1}) rotate(-90)\" text-anchor=\"middle\">exact-match accuracy (%)</text>\n",
            (w - legend) / 2.0,
            xml_escape(title),
            t + ph / 2.0
        );
        for (pi, panel) in panels.iter().enumerate() {
            let x0 = l + pi as f64 * (pw + gap);
            let px = |v: f64| x0 + (v.log2() - xmin) / span * pw;
            if !panel.is_empty() {
                let sub = match panel.as_str() {
                    "renumber" => "positions renumbered 0..L-1 (the seeds' code)".to_string(),
                    "keep" => "each kept token keeps its position".to_string(),
                    other => other.to_string(),
                };
                s += &format!("<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n", x0 + pw / 2.0, t - 10.0, xml_escape(&sub));
            }
            for k in 0..=10 {
                let acc = k as f64 * 10.0;
                let y = py(acc);
                s += &format!(
                    "<line x1=\"{x0:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#e5e5e5\"/>\
                     <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{acc:.0}</text>\n",
                    x0 + pw,
                    x0 - 6.0,
                    y + 4.0
                );
            }
            for &ratio in &self.ratios {
                let x = px(ratio);
                s += &format!(
                    "<line x1=\"{x:.1}\" y1=\"{t}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#e5e5e5\"/>\
                     <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{} ({} %)</text>\n",
                    t + ph,
                    t + ph + 18.0,
                    budget(self.tokens, ratio),
                    fmt_ratio(ratio)
                );
            }
            s += &format!(
                "<rect x=\"{x0:.1}\" y=\"{t}\" width=\"{pw}\" height=\"{ph}\" fill=\"none\" stroke=\"#333\"/>\n\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">visual tokens kept ({} per image)</text>\n",
                x0 + pw / 2.0,
                h - 10.0,
                self.tokens
            );
            for (m, label) in self.methods.iter().enumerate() {
                let (name, p) = split(label);
                if &p != panel {
                    continue;
                }
                let (c, sw) = (colour(&name), width(&name));
                let pts: Vec<String> = (0..self.ratios.len())
                    .map(|r| format!("{:.1},{:.1}", px(self.ratios[r]), py(self.accuracy(m, r))))
                    .collect();
                // the 95 % intervals first, under the line: a vertical bar with short caps, the
                // methods' bars shifted apart a little so that they do not hide each other
                let shift = (names.iter().position(|n| *n == name).unwrap_or(0) as f64
                    - (names.len() as f64 - 1.0) / 2.0)
                    * 1.2;
                for r in 0..self.ratios.len() {
                    let (lo, hi) = self.interval(m, r);
                    let x = px(self.ratios[r]) + shift;
                    let (y0, y1) = (py(lo), py(hi));
                    s += &format!(
                        "<path d=\"M{x:.1},{y0:.1}V{y1:.1}M{:.1},{y0:.1}h4M{:.1},{y1:.1}h4\" stroke=\"{c}\" \
                         stroke-opacity=\"0.55\" fill=\"none\"/>\n",
                        x - 2.0,
                        x - 2.0
                    );
                }
                s += &format!("<polyline points=\"{}\" fill=\"none\" stroke=\"{c}\" stroke-width=\"{sw}\"/>\n", pts.join(" "));
                for p in &pts {
                    let (x, y) = p.split_once(',').unwrap();
                    s += &format!("<circle cx=\"{x}\" cy=\"{y}\" r=\"3\" fill=\"{c}\"/>\n");
                }
            }
        }
        let lx = w - legend + 14.0;
        for (i, name) in names.iter().enumerate() {
            let ly = t + 10.0 + i as f64 * 20.0;
            s += &format!(
                "<line x1=\"{lx:.1}\" y1=\"{ly:.1}\" x2=\"{:.1}\" y2=\"{ly:.1}\" stroke=\"{}\" stroke-width=\"{}\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\">{}</text>\n",
                lx + 24.0,
                colour(name),
                width(name),
                lx + 30.0,
                ly + 4.0,
                xml_escape(name)
            );
        }
        s += "</svg>\n";
        s
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

fn fmt_p(p: f64) -> String {
    if p < 0.001 {
        "< 0.001".to_string()
    } else {
        format!("{p:.3}")
    }
}

/// A markdown table: the first column left-aligned, the others right-aligned.
fn markdown(head: &[String], rows: impl Iterator<Item = Vec<String>>) -> String {
    let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
    let mut s = line(head);
    s += &format!("| --- |{}\n", " ---: |".repeat(head.len() - 1));
    for row in rows {
        s += &line(&row);
    }
    s
}

fn fmt_ratio(r: f64) -> String {
    let p = r * 100.0;
    if (p - p.round()).abs() < 1e-9 {
        format!("{:.0}", p)
    } else {
        format!("{}", (p * 100.0).round() / 100.0)
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
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
    for i in 0..scenes {
        let ex = data.example(split, i as u64)?;
        let question = Question { text: &ex.qa.question, expected: &ex.qa.answer, rule: MatchRule::Exact };
        let scene = pollster::block_on(answer_scene(vlm, &scene_image(&ex.scene), None, &question, rows, ratios, 4, |_, _| {
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

/// Held-out scenes for the page's sample row: for each question kind in [`QaKind::ALL`] order, the
/// next test scene (from index 0 on) that has a question of that kind, with that question. Writes
/// `scene-test-NNNN.png` files and `scenes.json` ([{file, question, answer, kind, index}]) to `dir`.
pub fn write_scene_samples(data: &DataSource, dir: &std::path::Path) -> Result<serde_json::Value> {
    use crate::scenes::{scene_seed, QaKind, Scene};
    let io = |e: std::io::Error| crate::Error::Other(format!("cannot write to {}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut out = Vec::new();
    let mut index = 0u64;
    for kind in QaKind::ALL {
        let (scene, qa) = loop {
            let seed = scene_seed(Split::Test, index);
            let scene = Scene::generate(seed, &data.scenes);
            index += 1;
            if let Some(qa) = scene.sample_qa_of_kind(kind, seed) {
                break (scene, qa);
            }
        };
        let file = format!("scene-test-{:04}.png", index - 1);
        let png = crate::overlay::png_rgb(&scene.pixels, scene.width, scene.height)?;
        std::fs::write(dir.join(&file), png).map_err(io)?;
        out.push(serde_json::json!({
            "file": file,
            "question": qa.question,
            "answer": qa.answer,
            "kind": kind.name(),
            "index": index - 1,
        }));
    }
    let json = serde_json::Value::Array(out);
    std::fs::write(dir.join("scenes.json"), serde_json::to_string_pretty(&json).unwrap()).map_err(io)?;
    Ok(json)
}

/// The first `n` scenes of the test split with the question `evaluate` asks of each (the same as
/// its run on `--n n` or more scenes): `scene-test-NNNN.png` files (the same bytes as
/// [`write_scene_samples`]' for a scene both write) and `eval.json`
/// ({split, scenes: [{file, question, answer, kind, index}]}) in `dir`. The page's Evaluate panel
/// runs on them.
pub fn write_eval_scenes(data: &DataSource, n: usize, dir: &std::path::Path) -> Result<serde_json::Value> {
    let io = |e: std::io::Error| crate::Error::Other(format!("cannot write to {}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut scenes = Vec::with_capacity(n);
    for i in 0..n {
        let ex = data.example(Split::Test, i as u64)?;
        let file = format!("scene-test-{i:04}.png");
        let png = crate::overlay::png_rgb(&ex.scene.pixels, ex.scene.width, ex.scene.height)?;
        std::fs::write(dir.join(&file), png).map_err(io)?;
        scenes.push(serde_json::json!({
            "file": file,
            "question": ex.qa.question,
            "answer": ex.qa.answer,
            "kind": ex.qa.kind.name(),
            "index": i,
        }));
    }
    let json = serde_json::json!({
        "split": "test",
        "written_by": format!("evaluate --eval-scenes DIR --n {n}"),
        "scenes": scenes,
    });
    std::fs::write(dir.join("eval.json"), serde_json::to_string_pretty(&json).unwrap()).map_err(io)?;
    Ok(json)
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
