//! The questions' tests: the vocabulary, answers recomputed independently from the object list,
//! side questions away from the middle, balanced and complete sampling.

use super::super::*;
use super::configs;
use std::collections::{HashMap, HashSet};

#[test]
fn vocabulary_is_clean() {
    let v = vocabulary();
    let set: HashSet<&str> = v.iter().copied().collect();
    assert_eq!(set.len(), v.len(), "duplicate vocabulary words");
    for w in &v {
        assert!(!w.is_empty() && !w.contains(char::is_whitespace), "{w:?}");
        assert!(
            *w == "?" || w.chars().all(|c| c.is_ascii_lowercase()),
            "{w:?}"
        );
    }
    assert_eq!(
        tokenize("what colour is the circle?"),
        vec!["what", "colour", "is", "the", "circle", "?"]
    );
    assert_eq!(tokenize(" a  ? b?c "), vec!["a", "?", "b", "?", "c"]);
}

/// Every question and answer word is in the vocabulary, every answer is one word, and
/// every vocabulary word is used by some question or answer.
#[test]
fn words_are_in_vocabulary() {
    let vocab: HashSet<&str> = vocabulary().into_iter().collect();
    let mut used: HashSet<String> = HashSet::new();
    for cfg in configs() {
        for seed in 0..400u64 {
            let s = Scene::generate(seed, &cfg);
            for qa in s.questions(seed) {
                let at = tokenize(&qa.answer);
                assert_eq!(at.len(), 1, "answer {:?} is not one word", qa.answer);
                assert_eq!(at[0], qa.answer);
                assert!(vocab.contains(qa.answer.as_str()), "answer {:?}", qa.answer);
                assert_eq!(qa.question, qa.question.to_lowercase());
                for t in tokenize(&qa.question) {
                    assert!(
                        vocab.contains(t),
                        "question word {t:?} in {:?}",
                        qa.question
                    );
                    used.insert(t.to_string());
                }
                used.insert(qa.answer.clone());
            }
        }
    }
    let mut unused: Vec<&str> = vocab
        .iter()
        .copied()
        .filter(|w| !used.contains(*w))
        .collect();
    unused.sort();
    // Counts of six and more need more than the default 5 objects.
    assert_eq!(unused, ["eight", "nine", "seven", "six", "ten"]);
    let crowded = SceneConfig {
        small_px: 12,
        large_px: 16,
        margin_px: 3,
        ..SceneConfig::sized(128, 128)
    }
    .with_objects(10..=10);
    let s = Scene::generate(5, &crowded);
    assert_eq!(s.objects.len(), 10);
    assert!(s.questions(5).iter().any(|q| q.answer == "ten"));
}

fn parse_ref(tokens: &[&str]) -> (Option<Size>, Option<Colour>, Option<Shape>) {
    let (mut size, mut colour, mut shape) = (None, None, None);
    let (noun, adjs) = tokens.split_last().expect("empty reference");
    if *noun != "object" {
        shape = Some(
            *Shape::ALL
                .iter()
                .find(|s| s.name() == *noun)
                .unwrap_or_else(|| panic!("noun {noun:?}")),
        );
    }
    let mut adjs = adjs.iter();
    let mut next = adjs.next();
    if let Some(s) = next.and_then(|w| Size::ALL.iter().find(|s| s.name() == *w)) {
        size = Some(*s);
        next = adjs.next();
    }
    if let Some(w) = next {
        colour = Some(
            *Colour::ALL
                .iter()
                .find(|c| c.name() == *w)
                .unwrap_or_else(|| panic!("adjective {w:?}")),
        );
        next = adjs.next();
    }
    assert!(next.is_none(), "malformed reference {tokens:?}");
    (size, colour, shape)
}

/// Resolves a referring expression independently of the generator: exactly one object must
/// match.
fn resolve(scene: &Scene, tokens: &[&str]) -> usize {
    let (size, colour, shape) = parse_ref(tokens);
    let m: Vec<usize> = (0..scene.objects.len())
        .filter(|&i| {
            let o = &scene.objects[i];
            size.is_none_or(|s| s == o.size)
                && colour.is_none_or(|c| c == o.colour)
                && shape.is_none_or(|s| s == o.shape)
        })
        .collect();
    assert_eq!(
        m.len(),
        1,
        "reference {tokens:?} matches {m:?} in {:?}",
        scene.objects
    );
    // The size is only added when colour / shape alone are ambiguous.
    if size.is_some() {
        let without = scene
            .objects
            .iter()
            .filter(|o| {
                colour.is_none_or(|c| c == o.colour) && shape.is_none_or(|s| s == o.shape)
            })
            .count();
        assert!(without > 1, "needless size in {tokens:?}");
    }
    m[0]
}

/// Answers a question from the object list alone (parsing the question text).
fn answer_independently(scene: &Scene, q: &str) -> (String, Vec<usize>, QaKind) {
    let t = tokenize(q);
    assert_eq!(*t.last().unwrap(), "?");
    let t = &t[..t.len() - 1];
    let objs = &scene.objects;
    let (w, h, m) = (scene.width, scene.height, scene.config.margin_px);
    match t {
        ["what", what @ ("colour" | "shape"), "is", "the", rest @ ..] => {
            let dir_at = rest
                .iter()
                .position(|w| matches!(*w, "left" | "right" | "above" | "below"));
            let describe = |i: usize| -> String {
                if *what == "colour" {
                    objs[i].colour.name().to_string()
                } else {
                    objs[i].shape.name().to_string()
                }
            };
            if let Some(p) = dir_at {
                assert_eq!(p, 1);
                assert_eq!(rest[0], if *what == "colour" { "shape" } else { "object" });
                let (dir, after) = match rest[1] {
                    "left" | "right" => {
                        assert_eq!(rest[2], "of");
                        (rest[1], &rest[3..])
                    }
                    d => (d, &rest[2..]),
                };
                assert_eq!(after[0], "the");
                let a = resolve(scene, &after[1..]);
                let (_, ac, ash) = parse_ref(&after[1..]);
                assert!(
                    ac.is_some() && ash.is_some(),
                    "anchors name colour and shape"
                );
                let ab = objs[a].bbox;
                // Objects entirely on that side, and objects whose centre is on that side.
                let side_of = |o: &Object| -> (bool, bool) {
                    let (c2x, c2y) = (o.bbox.0 + o.bbox.2, o.bbox.1 + o.bbox.3);
                    let (a2x, a2y) = (ab.0 + ab.2, ab.1 + ab.3);
                    match dir {
                        "left" => (o.bbox.2 <= ab.0, c2x < a2x),
                        "right" => (o.bbox.0 >= ab.2, c2x > a2x),
                        "above" => (o.bbox.3 <= ab.1, c2y < a2y),
                        "below" => (o.bbox.1 >= ab.3, c2y > a2y),
                        _ => unreachable!(),
                    }
                };
                let entirely: Vec<usize> = (0..objs.len())
                    .filter(|&j| j != a && side_of(&objs[j]).0)
                    .collect();
                let centred: Vec<usize> = (0..objs.len())
                    .filter(|&j| j != a && side_of(&objs[j]).1)
                    .collect();
                assert_eq!(entirely.len(), 1, "{q}: not exactly one object {dir}");
                assert_eq!(centred, entirely, "{q}: another object is partly {dir}");
                (
                    describe(entirely[0]),
                    vec![entirely[0], a],
                    QaKind::Relation,
                )
            } else {
                let i = resolve(scene, rest);
                let (_, c, s) = parse_ref(rest);
                if *what == "colour" {
                    assert!(c.is_none() && s.is_some(), "{q} gives the answer away");
                    (describe(i), vec![i], QaKind::ColourOfShape)
                } else {
                    assert!(s.is_none() && c.is_some(), "{q} gives the answer away");
                    (describe(i), vec![i], QaKind::ShapeOfColour)
                }
            }
        }
        ["how", "many", what @ .., "are", "there"] => {
            let m: Vec<usize> = match what {
                ["objects"] => (0..objs.len()).collect(),
                [c, "objects"] => {
                    let c = Colour::ALL.into_iter().find(|x| x.name() == *c).unwrap();
                    (0..objs.len()).filter(|&i| objs[i].colour == c).collect()
                }
                [p] => {
                    let s = Shape::ALL.into_iter().find(|x| x.plural() == *p).unwrap();
                    (0..objs.len()).filter(|&i| objs[i].shape == s).collect()
                }
                _ => panic!("bad count question {q}"),
            };
            let words = [
                "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                "ten",
            ];
            (words[m.len()].to_string(), m, QaKind::Count)
        }
        ["is", "there", art, c, s] => {
            let c = Colour::ALL.into_iter().find(|x| x.name() == *c).unwrap();
            let s = Shape::ALL.into_iter().find(|x| x.name() == *s).unwrap();
            assert_eq!(*art, if c == Colour::Orange { "an" } else { "a" });
            let m: Vec<usize> = (0..objs.len())
                .filter(|&i| objs[i].colour == c && objs[i].shape == s)
                .collect();
            (
                (if m.is_empty() { "no" } else { "yes" }).to_string(),
                m,
                QaKind::Exists,
            )
        }
        ["is", "the", rest @ .., "on", "the", "left", "or", "the", "right"] => {
            let i = resolve(scene, rest);
            let b = objs[i].bbox;
            // Never near the middle: the whole bbox at least the margin away from it.
            let left = 2 * (b.2 + m) <= w;
            let right = 2 * b.0 >= w + 2 * m;
            assert!(left != right, "{q}: object {b:?} is near the middle of {w}");
            (
                (if left { "left" } else { "right" }).to_string(),
                vec![i],
                QaKind::Side,
            )
        }
        ["is", "the", rest @ .., "at", "the", "top", "or", "the", "bottom"] => {
            let i = resolve(scene, rest);
            let b = objs[i].bbox;
            let top = 2 * (b.3 + m) <= h;
            let bottom = 2 * b.1 >= h + 2 * m;
            assert!(top != bottom, "{q}: object {b:?} is near the middle of {h}");
            (
                (if top { "top" } else { "bottom" }).to_string(),
                vec![i],
                QaKind::Side,
            )
        }
        ["is", "the", rest @ .., "small", "or", "large"] => {
            let i = resolve(scene, rest);
            let (sz, c, s) = parse_ref(rest);
            assert!(sz.is_none() && c.is_some() && s.is_some(), "{q}");
            (objs[i].size.name().to_string(), vec![i], QaKind::Size)
        }
        _ => panic!("unknown question form {q:?}"),
    }
}

#[test]
fn answers_match_independent_recomputation() {
    let mut checked = 0;
    for cfg in configs() {
        for seed in 0..500u64 {
            let s = Scene::generate(seed, &cfg);
            let qs = s.questions(seed);
            let mut seen = HashSet::new();
            for qa in &qs {
                assert!(
                    seen.insert(qa.question.clone()),
                    "duplicate question {:?}",
                    qa.question
                );
                let (ans, about, kind) = answer_independently(&s, &qa.question);
                assert_eq!(
                    qa.answer, ans,
                    "seed {seed}: {:?} in {:?}",
                    qa.question, s.objects
                );
                assert_eq!(qa.kind, kind, "{:?}", qa.question);
                let (mut a, mut b) = (qa.about.clone(), about);
                if kind != QaKind::Relation {
                    a.sort();
                    b.sort();
                }
                assert_eq!(a, b, "about of {:?}", qa.question);
                checked += 1;
            }
            let sampled = s.sample_qa(seed ^ 99);
            assert!(s.questions(seed ^ 99).contains(&sampled));
        }
    }
    assert!(checked > 20_000, "only {checked} questions checked");
}

/// An independent, deliberately naive side check: side questions are only asked about
/// objects whose centre is far (at least half the object plus the margin) from the middle.
#[test]
fn side_questions_avoid_the_middle() {
    let mut n = 0;
    for cfg in configs() {
        for seed in 0..500u64 {
            let s = Scene::generate(seed, &cfg);
            for qa in s.questions(seed).iter().filter(|q| q.kind == QaKind::Side) {
                let o = &s.objects[qa.about[0]];
                let horizontal = qa.question.contains("left");
                let (c, half, extent) = if horizontal {
                    (
                        o.cx as f64 + 0.5,
                        s.width as f64 / 2.0,
                        (o.bbox.2 - o.bbox.0) as f64,
                    )
                } else {
                    (
                        o.cy as f64 + 0.5,
                        s.height as f64 / 2.0,
                        (o.bbox.3 - o.bbox.1) as f64,
                    )
                };
                let dist = (c - half).abs();
                assert!(
                    dist >= extent / 2.0 + cfg.margin_px as f64 - 1.0,
                    "{}: centre {c} is {dist} px from the middle (extent {extent})",
                    qa.question
                );
                let expected = match (horizontal, c < half) {
                    (true, true) => "left",
                    (true, false) => "right",
                    (false, true) => "top",
                    (false, false) => "bottom",
                };
                assert_eq!(qa.answer, expected);
                n += 1;
            }
        }
    }
    assert!(n > 1000);
}

#[test]
fn exists_answers_are_balanced() {
    let cfg = SceneConfig::default();
    let mut yes = 0;
    let mut total = 0;
    for i in 0..2000u64 {
        let seed = scene_seed(Split::Train, i);
        let s = Scene::generate(seed, &cfg);
        let qa = s
            .sample_qa_of_kind(QaKind::Exists, seed)
            .expect("exists always available");
        total += 1;
        yes += (qa.answer == "yes") as usize;
    }
    let frac = yes as f64 / total as f64;
    assert!((0.4..=0.6).contains(&frac), "yes fraction {frac}");
    // Also through sample_qa, over the yes/no questions it happens to pick.
    let (mut yes, mut total) = (0, 0);
    for i in 0..2000u64 {
        let seed = scene_seed(Split::Validation, i);
        let qa = Scene::generate(seed, &cfg).sample_qa(seed);
        if qa.answer == "yes" || qa.answer == "no" {
            total += 1;
            yes += (qa.answer == "yes") as usize;
        }
    }
    let frac = yes as f64 / total as f64;
    assert!(
        total > 150 && (0.4..=0.6).contains(&frac),
        "yes fraction {frac} of {total}"
    );
}

#[test]
fn every_kind_is_sampled() {
    let cfg = SceneConfig::default();
    let mut counts: HashMap<QaKind, usize> = HashMap::new();
    for i in 0..500u64 {
        let seed = scene_seed(Split::Train, i);
        let qa = Scene::generate(seed, &cfg).sample_qa(seed);
        *counts.entry(qa.kind).or_default() += 1;
    }
    for k in QaKind::ALL {
        let c = counts.get(&k).copied().unwrap_or(0);
        // Uniform over 7 kinds would be ~71 each; allow for scenes lacking a kind.
        assert!(c >= 30, "{k:?} sampled {c} times: {counts:?}");
    }
}
