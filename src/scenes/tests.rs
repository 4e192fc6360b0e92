//! The scenes' and questions' tests.

use super::*;
use std::collections::{HashMap, HashSet};

fn configs() -> Vec<SceneConfig> {
    vec![
        SceneConfig::default(),
        SceneConfig::sized(96, 96),
        SceneConfig::sized(128, 128),
        SceneConfig::default().plain(),
    ]
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Pins the exact pixels, questions and sampled question of scenes in every config the
/// built-in model's data uses (default, plain background, the smaller sizes) and at the edge
/// seeds (0, u64::MAX, a test-split seed), so any change to the generator, any dependence on
/// state outside the seed (a global RNG, hash order) or a platform difference is noticed.
#[test]
fn golden_hashes() {
    let test3 = scene_seed(Split::Test, 3);
    let mut h = Vec::new();
    for (seed, cfg) in [
        (0u64, SceneConfig::default()),
        (1, SceneConfig::sized(128, 128)),
        (2, SceneConfig::sized(96, 96)),
        (42, SceneConfig::default().plain()),
        (u64::MAX, SceneConfig::default()),
        (test3, SceneConfig::sized(96, 96)),
    ] {
        let s = Scene::generate(seed, &cfg);
        assert_eq!(s.pixels.len(), cfg.width * cfg.height * 3, "seed {seed}: pixel count");
        let qs: String = s
            .questions(seed)
            .iter()
            .map(|q| format!("{}={};", q.question, q.answer))
            .collect();
        let sample = format!("{:?}", s.sample_qa(seed));
        h.push((fnv1a(&s.pixels), fnv1a(qs.as_bytes()), fnv1a(sample.as_bytes())));
    }
    let expected: [(u64, u64, u64); 6] = GOLDEN;
    assert_eq!(h, expected.to_vec(), "golden hashes changed: {h:#x?}");
}

/// (FNV-1a of the pixels, of "question=answer;" of every question, of the sampled question's
/// Debug text). Update only for a deliberate change of the generator: it changes every dataset
/// built from these seeds. The first two columns of the first three rows are the values pinned
/// since the built-in model was trained (2026-11).
const GOLDEN: [(u64, u64, u64); 6] = [
    (0x5604_4bde_52fb_8af5, 0xcfa3_0ba6_8f9a_c7f2, 0x3aeb_77e1_da45_e104),
    (0x1bd3_cc27_b1c5_fd88, 0x6667_f21b_429b_bf56, 0x23be_3705_bc88_e21f),
    (0x7c86_0a28_180d_6727, 0x4465_57ef_d5b9_9c3b, 0xd098_853c_69d0_83d8),
    (0x2fda_be0c_b247_a8d8, 0xd52b_6164_ecf9_bb70, 0xe595_e3c7_675b_d462),
    (0xe7f3_72cd_0c4a_e30f, 0x4d40_2e8d_2516_9680, 0xf356_e781_2d6e_3d1d),
    (0x4c63_3b90_c38e_54a2, 0x8ddb_a9c0_1451_b9cf, 0xb9f2_31fc_615c_9f32),
];

#[test]
fn different_seeds_differ() {
    let cfg = SceneConfig::default();
    let mut pix = HashSet::new();
    let mut layouts = HashSet::new();
    for seed in 0..300u64 {
        let s = Scene::generate(seed, &cfg);
        assert!(pix.insert(s.pixels.clone()), "seed {seed} repeats pixels");
        layouts.insert(format!("{:?}", s.objects));
    }
    assert_eq!(layouts.len(), 300);
    // Neighbouring seeds are unrelated, not shifted copies.
    let a = Scene::generate(10, &cfg);
    let b = Scene::generate(11, &cfg);
    assert_ne!(a.objects, b.objects);
}

#[test]
fn splits_are_disjoint() {
    let mut seen: HashMap<u64, (Split, u64)> = HashMap::new();
    for split in Split::ALL {
        for i in 0..100_000u64 {
            if let Some(prev) = seen.insert(scene_seed(split, i), (split, i)) {
                panic!("{split:?}/{i} shares its seed with {prev:?}");
            }
        }
    }
    assert_eq!(seen.len(), 300_000);
}

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
fn objects_do_not_overlap_and_fit() {
    for cfg in configs() {
        let m = cfg.margin_px;
        for seed in 0..1000u64 {
            let s = Scene::generate(seed, &cfg);
            assert!(
                cfg.objects.contains(&s.objects.len()),
                "seed {seed}: {} objects",
                s.objects.len()
            );
            for (i, a) in s.objects.iter().enumerate() {
                let (x0, y0, x1, y1) = a.bbox;
                assert!(x0 < x1 && y0 < y1);
                assert!(
                    x0 >= m && y0 >= m && x1 + m <= s.width && y1 + m <= s.height,
                    "{:?} too close to the border",
                    a.bbox
                );
                assert_eq!(a.side, cfg.side(a.size));
                for b in &s.objects[i + 1..] {
                    let (u0, v0, u1, v1) = b.bbox;
                    let apart = x1 + m <= u0 || u1 + m <= x0 || y1 + m <= v0 || v1 + m <= y0;
                    assert!(
                        apart,
                        "seed {seed}: {:?} and {:?} closer than {m}",
                        a.bbox, b.bbox
                    );
                }
            }
        }
    }
}

#[test]
fn rendered_objects_have_their_colour() {
    for cfg in configs() {
        for seed in 0..300u64 {
            let s = Scene::generate(seed, &cfg);
            for o in &s.objects {
                let rgb = o.colour.rgb();
                assert_eq!(s.pixel(o.cx, o.cy), rgb, "centre of {o:?}");
                assert!(o.covers(o.cx, o.cy));
                let (x0, y0, x1, y1) = o.bbox;
                let mut n = 0;
                let (mut top, mut bottom, mut left, mut right) = (false, false, false, false);
                for y in y0..y1 {
                    for x in x0..x1 {
                        if o.covers(x, y) {
                            assert_eq!(s.pixel(x, y), rgb);
                            n += 1;
                            top |= y == y0;
                            bottom |= y == y1 - 1;
                            left |= x == x0;
                            right |= x == x1 - 1;
                        }
                    }
                }
                assert!(top && bottom && left && right, "bbox of {o:?} is not tight");
                // Visible: at least a third of the slot area (star, triangle are the thinnest).
                assert!(n * 3 >= o.side * o.side, "{o:?} has only {n} pixels");
                // Large objects are clearly bigger than small ones.
                let w = x1 - x0;
                match o.size {
                    Size::Small => assert!(w <= cfg.small_px),
                    Size::Large => assert!(w > cfg.small_px + 2),
                }
            }
        }
    }
}

/// Background and clutter pixels are far from every object colour, so objects are
/// separable by colour alone.
#[test]
fn background_is_far_from_object_colours() {
    let dist2 = |a: [u8; 3], b: [u8; 3]| -> i32 {
        (0..3).map(|c| (a[c] as i32 - b[c] as i32).pow(2)).sum()
    };
    for cfg in configs() {
        for seed in 0..200u64 {
            let s = Scene::generate(seed, &cfg);
            for y in 0..s.height {
                for x in 0..s.width {
                    if s.objects.iter().any(|o| o.covers(x, y)) {
                        continue;
                    }
                    let p = s.pixel(x, y);
                    for c in Colour::ALL {
                        assert!(
                            dist2(p, c.rgb()) >= 60 * 60,
                            "pixel {p:?} at ({x},{y}) close to {c:?}"
                        );
                    }
                }
            }
        }
    }
    for a in Colour::ALL {
        for b in Colour::ALL {
            if a != b {
                assert!(dist2(a.rgb(), b.rgb()) >= 100 * 100, "{a:?} vs {b:?}");
            }
        }
    }
}

/// Textured backgrounds are not flat: 8x8 patches of pure background (no object, no
/// clutter) come in several different looks.
#[test]
fn textured_backgrounds_vary() {
    let cfg = SceneConfig {
        clutter: false,
        ..SceneConfig::default()
    };
    let mut kinds = HashSet::new();
    for seed in 0..300u64 {
        let s = Scene::generate(seed, &cfg);
        kinds.insert(s.background.name());
        let mut looks = HashSet::new();
        let mut n = 0;
        for py in 0..8 {
            for px in 0..8 {
                let touches = s.objects.iter().any(|o| {
                    let (x0, y0, x1, y1) = o.slot();
                    px * 8 < x1 && x0 < px * 8 + 8 && py * 8 < y1 && y0 < py * 8 + 8
                });
                if touches {
                    continue;
                }
                let patch: Vec<[u8; 3]> = (py * 8..py * 8 + 8)
                    .flat_map(|y| (px * 8..px * 8 + 8).map(move |x| (x, y)))
                    .map(|(x, y)| s.pixel(x, y))
                    .collect();
                looks.insert(patch);
                n += 1;
            }
        }
        if n >= 16 {
            assert!(
                looks.len() >= 3,
                "seed {seed} ({:?}): {} looks in {n} background patches",
                s.background,
                looks.len()
            );
        }
    }
    assert_eq!(kinds.len(), 4, "{kinds:?}");
    let plain = Scene::generate(3, &SceneConfig::default().plain());
    let bg: HashSet<[u8; 3]> = (0..64)
        .flat_map(|y| (0..64).map(move |x| (x, y)))
        .filter(|&(x, y)| !plain.objects.iter().any(|o| o.covers(x, y)))
        .map(|(x, y)| plain.pixel(x, y))
        .collect();
    assert_eq!(bg.len(), 1);
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

#[test]
fn patches_cover_the_object() {
    let s = Scene::generate(4, &SceneConfig::default());
    for o in &s.objects {
        let patches: HashSet<usize> = o.patches_covered(8, s.width).into_iter().collect();
        for y in 0..s.height {
            for x in 0..s.width {
                if o.covers(x, y) {
                    assert!(patches.contains(&((y / 8) * 8 + x / 8)));
                }
            }
        }
        assert!(patches.len() <= 9);
    }
}
