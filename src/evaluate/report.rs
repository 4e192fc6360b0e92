//! The evaluation's reports: markdown tables (accuracy with intervals, ZOO against every row,
//! by question kind), JSON, and the SVG plot of accuracy against keep ratio.

use super::*;

impl Evaluation {
    /// "82.8 (80.3-85.0)": the accuracy and its 95 % interval.
    fn cell(&self, m: usize, r: usize) -> String {
        let (lo, hi) = self.interval(m, r);
        format!("{:.1} ({lo:.1}–{hi:.1})", self.accuracy(m, r))
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

fn fmt_p(p: f64) -> String {
    if p < 0.001 {
        "< 0.001".to_string()
    } else {
        format!("{p:.3}")
    }
}

/// A markdown table: the first column left-aligned, the others right-aligned.
pub(super) fn markdown(head: &[String], rows: impl Iterator<Item = Vec<String>>) -> String {
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
