//! The scenes' tests: pinned output, seeds and splits, layout, colours, backgrounds (the
//! questions' own tests are in `questions.rs`).

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

mod questions;
