//! One scene's answers for each pruning method and keep ratio, and whether each is right: what the
//! `evaluate` bin runs natively on its held-out scenes and what the page's Evaluate panel runs in
//! the browser, one function for both, so that the panel's numbers are `evaluate`'s by
//! construction (the browser suite checks it).
//!
//! Protocol (the seeds' accuracy tables, in small): the image is encoded once (with the last
//! encoder layer's attention maps when a row is VisionZip), each method ranks its visual tokens
//! once per image (the page's per-tile budget), and each keep ratio is a prefix of that ranking
//! (`budget(n, ratio)` tokens); the answer is the greedy answer from the kept tokens only.

use crate::error::{Error, Result};
use crate::preprocess::RgbImage;
use crate::prune::{budget, rank, BudgetMode, Fusion, Method, Positions, Proxy, PruneInputs, RelevanceSign};
use crate::Vlm;

/// When an answer counts as right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchRule {
    /// The whole answer (trimmed) equals the expected word: the built-in model, which answers in
    /// one word of the scenes' vocabulary (what `evaluate` reports).
    Exact,
    /// The expected word is one of the answer's words, case-insensitive, a plural "s" allowed,
    /// with the synonyms of [`synonyms`]: a model that answers in a sentence ("There are two.").
    Word,
}

impl MatchRule {
    pub const NAMES: &'static [&'static str] = &["exact", "word"];

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "exact" => Ok(MatchRule::Exact),
            "word" => Ok(MatchRule::Word),
            o => Err(Error::Other(format!("unknown answer rule {o:?}; choose one of {:?}", Self::NAMES))),
        }
    }

    /// Whether `got` (the decoded, trimmed answer) is right when `expected` is.
    pub fn is_right(self, expected: &str, got: &str) -> bool {
        match self {
            MatchRule::Exact => got == expected,
            MatchRule::Word => {
                let expected = expected.to_lowercase();
                let accepted = synonyms(&expected);
                got.to_lowercase()
                    .split(|c: char| !c.is_alphanumeric())
                    .filter(|w| !w.is_empty())
                    .any(|w| accepted.iter().any(|a| w == *a || w.strip_suffix('s') == Some(*a)))
            }
        }
    }
}

/// The words accepted for an expected answer of the scenes: itself, a count's digits (and "none"
/// / "no" for zero), and the one colour with a common other name.
pub fn synonyms(expected: &str) -> Vec<&str> {
    const DIGITS: [(&str, &str); 11] = [
        ("zero", "0"),
        ("one", "1"),
        ("two", "2"),
        ("three", "3"),
        ("four", "4"),
        ("five", "5"),
        ("six", "6"),
        ("seven", "7"),
        ("eight", "8"),
        ("nine", "9"),
        ("ten", "10"),
    ];
    let mut v = vec![expected];
    if let Some((_, d)) = DIGITS.iter().find(|(w, _)| *w == expected) {
        v.push(d);
    }
    match expected {
        "zero" => v.extend(["none", "no"]),
        "purple" => v.push("violet"),
        _ => {}
    }
    v
}

/// One row of an evaluation: a method with its parameters, and the positions its answers use.
#[derive(Clone, Debug)]
pub struct Row {
    pub label: String,
    pub method: Method,
    pub positions: Positions,
}

impl Row {
    /// A method name with variants after colons: zoo takes a fusion (`zoo:sum`, `zoo:none`: the
    /// paper's Table 4 ablation), a proxy (`zoo:last-mlp`) and a number of directions (`zoo:m16`);
    /// cdpruner a relevance sign (`cdpruner:plain`). One row for each of `positions`; labels say
    /// the positions only when both are evaluated.
    pub fn parse(spec: &str, seed: u64, positions: &[Positions]) -> Result<Vec<Row>> {
        let mut parts = spec.split(':');
        let name = parts.next().unwrap_or_default();
        let mut method = Method::by_name(name, seed)?;
        for v in parts {
            let bad = || {
                Error::Other(format!(
                    "{spec:?}: {v:?} is not a variant of {name} (zoo: a fusion {:?}, a proxy {:?} or mN; \
                     cdpruner: a relevance sign {:?})",
                    Fusion::NAMES,
                    Proxy::NAMES,
                    RelevanceSign::NAMES
                ))
            };
            match &mut method {
                Method::Zoo { fusion, params } => {
                    if let Some(f) = Fusion::parse(v) {
                        *fusion = f;
                    } else if let Some(p) = Proxy::parse(v) {
                        params.proxy = p;
                    } else if let Some(m) = v.strip_prefix('m').and_then(|m| m.parse::<usize>().ok()).filter(|&m| m > 0) {
                        params.m = m;
                    } else {
                        return Err(bad());
                    }
                }
                Method::CdPruner { sign } => *sign = RelevanceSign::parse(v).ok_or_else(bad)?,
                _ => return Err(bad()),
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

/// What one scene gave: `answers[row][ratio]` and whether each was right.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SceneAnswers {
    /// Visual tokens of the image.
    pub tokens: usize,
    pub answers: Vec<Vec<String>>,
    pub right: Vec<Vec<bool>>,
}

/// The questions of a scene as the model sees them, and how its answer is judged.
pub struct Question<'a> {
    pub text: &'a str,
    pub expected: &'a str,
    pub rule: MatchRule,
}

/// Encodes `img` once (tiled as the model's processor says, or at most `max_grid` x `max_grid`
/// tiles), ranks it once per row (rows of one method with both positions share the ranking) and
/// answers `question` at every ratio from the kept tokens only, greedily, at most
/// `max_new_tokens` tokens. `go_on(done, total)` after each answer (`total` = rows x ratios): when
/// it answers false the scene stops there and the result is None (a Stop button). `zoo_plans`:
/// ZOO's plan kept from scene to scene (it depends on the model, not the image; the scores are the
/// same bit for bit).
#[allow(clippy::too_many_arguments)]
pub async fn answer_scene<F: std::future::Future<Output = bool>>(
    vlm: &Vlm,
    zoo_plans: Option<&crate::prune::zoo::PlanCache>,
    img: &RgbImage,
    max_grid: Option<usize>,
    question: &Question<'_>,
    rows: &[Row],
    ratios: &[f64],
    max_new_tokens: usize,
    mut go_on: impl FnMut(usize, usize) -> F,
) -> Result<Option<SceneAnswers>> {
    let processed = vlm.preprocess(img, max_grid)?;
    let maps: Vec<usize> = if rows.iter().any(|r| matches!(r.method, Method::VisionZip { .. })) {
        vec![vlm.config.vision_config.num_hidden_layers - 1]
    } else {
        vec![]
    };
    let encoded = vlm.encode(processed, &maps).await?;
    let ids = vlm.prompt_ids(question.text, &encoded.processed)?;
    let q_ids = vlm.tokenizer.question_ids(question.text)?;
    let n = encoded.features().dims()[0];
    let inputs = PruneInputs { zoo_plans, ..PruneInputs::new(&vlm.model, &encoded.tiles, vlm.config.image_token_id, &ids, &q_ids) };
    let total = rows.len() * ratios.len();
    let mut answers = Vec::with_capacity(rows.len());
    let mut right = Vec::with_capacity(rows.len());
    let mut last: Option<(String, crate::prune::Ranking)> = None;
    for row in rows {
        let key = format!("{:?}", row.method);
        let ranking = match last.take() {
            Some((k, r)) if k == key => r,
            _ => rank(&row.method, &inputs, BudgetMode::PerTile).await?,
        };
        let (mut a, mut ok) = (Vec::with_capacity(ratios.len()), Vec::with_capacity(ratios.len()));
        for &ratio in ratios {
            let keep = ranking.keep(budget(n, ratio));
            let mut gen = vlm.start_answer_pruned(
                &ids,
                encoded.features(),
                &keep,
                ranking.deep_drop.as_ref(),
                row.positions,
                max_new_tokens,
            )?;
            while gen.next_token(&vlm.model).await?.is_some() {}
            let got = vlm.tokenizer.decode(&gen.produced)?.trim().to_string();
            ok.push(question.rule.is_right(question.expected, &got));
            a.push(got);
            if !go_on(answers.len() * ratios.len() + a.len(), total).await {
                return Ok(None);
            }
        }
        answers.push(a);
        right.push(ok);
        last = Some((key, ranking));
    }
    Ok(Some(SceneAnswers { tokens: n, answers, right }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_is_the_whole_trimmed_answer() {
        assert!(MatchRule::Exact.is_right("two", "two"));
        assert!(!MatchRule::Exact.is_right("two", "Two"));
        assert!(!MatchRule::Exact.is_right("two", "two circles"));
    }

    #[test]
    fn word_finds_the_expected_word_its_plural_and_synonyms() {
        let w = MatchRule::Word;
        assert!(w.is_right("two", "There are 2 purple objects."));
        assert!(w.is_right("two", "TWO."));
        assert!(w.is_right("circle", "Circles"));
        assert!(w.is_right("zero", "There are none."));
        assert!(w.is_right("purple", "It is violet"));
        assert!(w.is_right("yes", "Yes, there is."));
        // a word inside another word is not the word; a different count is wrong
        assert!(!w.is_right("one", "someone"));
        assert!(!w.is_right("two", "three"));
        assert!(!w.is_right("red", "reddish"));
        assert!(!w.is_right("left", ""));
        // "10" is ten, not one
        assert!(!w.is_right("one", "10"));
        assert!(w.is_right("ten", "10"));
    }

    #[test]
    fn rules_parse_by_name() {
        assert_eq!(MatchRule::parse("exact").unwrap(), MatchRule::Exact);
        assert_eq!(MatchRule::parse("word").unwrap(), MatchRule::Word);
        assert!(MatchRule::parse("fuzzy").unwrap_err().to_string().contains("exact"));
    }
}
