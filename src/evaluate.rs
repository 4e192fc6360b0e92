//! Accuracy against keep ratio for every pruning method, on held-out synthetic scenes (issue 5):
//! the project's small version of the seeds' tables. Native only (it blocks on the answers).
//!
//! Protocol: scene `i` of a split with the question [`crate::builtin::DataSource::example`] samples
//! for it (the protocol of the test-split accuracy); the image is encoded once, every method ranks
//! its visual tokens once, and each keep ratio is a prefix of that ranking (`budget(n, ratio)`
//! tokens); the answer is the greedy answer from the kept tokens only, compared exactly with the
//! scene's answer.

use std::collections::BTreeMap;

use crate::builtin::{scene_image, DataSource};
use crate::error::Result;
use crate::pipeline::EncodedImage;
use crate::prune::{budget, rank, BudgetMode, Method, Positions, PruneInputs};
use crate::scenes::Split;
use crate::Vlm;

/// Encodes an image with the attention maps VisionZip needs (the last encoder layer's).
pub fn encode_for_pruning(vlm: &Vlm, img: &crate::preprocess::RgbImage) -> Result<EncodedImage> {
    let processed = vlm.preprocess(img, None)?;
    let last = vlm.config.vision_config.num_hidden_layers - 1;
    Ok(vlm.encode(processed, 1, &[last], |_, _| {}))
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
    /// Per question kind: (scenes, correct[method][ratio]).
    pub by_kind: BTreeMap<&'static str, (usize, Vec<Vec<usize>>)>,
    pub seconds: f64,
}

impl Evaluation {
    pub fn accuracy(&self, m: usize, r: usize) -> f64 {
        100.0 * self.correct[m][r] as f64 / self.scenes.max(1) as f64
    }

    /// Markdown table: one row per method, one column per keep ratio (accuracy in %, with the
    /// kept token count in the header).
    pub fn table(&self) -> String {
        let mut head = vec!["method".to_string()];
        head.extend(self.ratios.iter().map(|&r| format!("{} % ({} tok)", fmt_ratio(r), budget(self.tokens, r))));
        let rows = self.methods.iter().enumerate().map(|(m, name)| {
            let mut row = vec![name.clone()];
            row.extend((0..self.ratios.len()).map(|r| format!("{:.1}", self.accuracy(m, r))));
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
            "by_kind": self.by_kind.iter().map(|(k, (n, c))| (k.to_string(), serde_json::json!({"scenes": n, "correct": c}))).collect::<serde_json::Map<_, _>>(),
            "seconds": self.seconds,
        })
    }

    /// A line plot of accuracy (%) against keep ratio (log2 axis), one line per method. Rows
    /// labelled "name (renumber)" / "name (keep)" are drawn in two panels side by side, a method
    /// in the same colour in both; the legend names the methods once.
    pub fn svg(&self, title: &str) -> String {
        let split = |label: &str| -> (String, String) {
            match label.rsplit_once(" (") {
                Some((m, p)) if p.ends_with(')') => (m.to_string(), p.trim_end_matches(')').to_string()),
                _ => (label.to_string(), String::new()),
            }
        };
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
        const COLOURS: [&str; 10] = [
            "#d62728", "#1f77b4", "#2ca02c", "#7f7f7f", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#e377c2",
            "#bcbd22",
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

/// One row of an evaluation: a method with its parameters, and the positions its answers use.
#[derive(Clone, Debug)]
pub struct Row {
    pub label: String,
    pub method: Method,
    pub positions: Positions,
}

impl Row {
    /// "zoo", "zoo:sum", "zoo:none" (ZOO's fusion ablation, the paper's Table 4) or any method
    /// name, for each of `positions`; labels say the positions only when both are evaluated.
    pub fn parse(spec: &str, seed: u64, positions: &[Positions]) -> Result<Vec<Row>> {
        let (name, fusion) = spec.split_once(':').map_or((spec, None), |(n, f)| (n, Some(f)));
        let mut method = Method::by_name(name, seed)?;
        if let Some(f) = fusion {
            match &mut method {
                Method::Zoo { fusion, .. } => {
                    *fusion = crate::prune::Fusion::parse(f).ok_or_else(|| {
                        crate::Error::Other(format!("unknown fusion {f:?} in {spec:?}: multiply, sum or none"))
                    })?
                }
                _ => return Err(crate::Error::Other(format!("{spec:?}: only zoo takes a fusion (zoo:sum)"))),
            }
        }
        Ok(positions
            .iter()
            .map(|&p| Row {
                label: if positions.len() > 1 { format!("{spec} ({})", p.name()) } else { spec.to_string() },
                method: method.clone(),
                positions: p,
            })
            .collect())
    }
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
    let mut by_kind: BTreeMap<&'static str, (usize, Vec<Vec<usize>>)> = BTreeMap::new();
    let mut tokens = 0;
    for i in 0..scenes {
        let ex = data.example(split, i as u64)?;
        let encoded = encode_for_pruning(vlm, &scene_image(&ex.scene))?;
        let ids = vlm.prompt_ids(&ex.qa.question, &encoded.processed)?;
        let q_ids = vlm.tokenizer.question_ids(&ex.qa.question)?;
        let n = encoded.features().dims()[0];
        tokens = n;
        let kind = by_kind
            .entry(ex.qa.kind.name())
            .or_insert_with(|| (0, vec![vec![0usize; ratios.len()]; methods.len()]));
        kind.0 += 1;
        let inputs = PruneInputs::new(&vlm.model, &encoded.tiles, vlm.config.image_token_id, &ids, &q_ids);
        let mut last: Option<(String, crate::prune::Ranking)> = None;
        for (m, row) in methods.iter().enumerate() {
            // the rows of one method with both positions share its ranking
            let key = format!("{:?}", row.method);
            let ranking = match last.take() {
                Some((k, r)) if k == key => r,
                _ => pollster::block_on(rank(&row.method, &inputs, BudgetMode::PerTile))?,
            };
            for (r, &ratio) in ratios.iter().enumerate() {
                let keep = ranking.keep(budget(n, ratio));
                let got = vlm.answer_kept(&ids, &encoded, &keep, ranking.deep_drop.as_ref(), row.positions, 4)?;
                if got == ex.qa.answer {
                    correct[m][r] += 1;
                    kind.1[m][r] += 1;
                }
            }
            last = Some((key, ranking));
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
        by_kind,
        seconds: start.elapsed().as_secs_f64(),
    })
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
