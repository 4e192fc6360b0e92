//! Byte-for-byte checks of the Pillow ports against hand-worked cases and Pillow 13's own output
//! (tests/fixtures/resample_golden.json, from tests/fixtures/make_resample_golden.py).

use super::*;

const ALL: [Filter; 6] = [
    Filter::Nearest,
    Filter::Lanczos,
    Filter::Bilinear,
    Filter::Bicubic,
    Filter::Box,
    Filter::Hamming,
];

/// Small deterministic pseudo-random bytes (xorshift).
fn noise(n: usize, mut s: u32) -> Vec<u8> {
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 24) as u8
        })
        .collect()
}

#[test]
fn pil_codes_round_trip() {
    for f in ALL {
        assert_eq!(Filter::from_pil(f.pil_code()), Some(f));
    }
    assert_eq!(Filter::from_pil(1), Some(Filter::Lanczos));
    assert_eq!(Filter::from_pil(6), None);
}

#[test]
fn filter_values() {
    assert_eq!(bicubic_filter(0.0), 1.0);
    assert_eq!(bicubic_filter(1.0), 0.0);
    assert_eq!(bicubic_filter(0.5), 0.5625);
    assert_eq!(bicubic_filter(-1.5), -0.0625);
    assert_eq!(bicubic_filter(2.0), 0.0);
    assert_eq!(bilinear_filter(-0.25), 0.75);
    assert_eq!(lanczos_filter(0.0), 1.0);
    assert!(lanczos_filter(1.0).abs() < 1e-15);
    assert!(lanczos_filter(-2.0).abs() < 1e-15);
    assert_eq!(lanczos_filter(3.0), 0.0);
    assert!(lanczos_filter(-3.0).abs() < 1e-15); // -3 is inside [-3, 3)
    assert_eq!(box_filter(0.5), 1.0);
    assert_eq!(box_filter(-0.5), 0.0);
    assert_eq!(hamming_filter(0.0), 1.0);
    assert_eq!(hamming_filter(1.0), 0.0);
}

#[test]
fn identity_returns_input() {
    let img = noise(13 * 7 * 3, 1);
    for f in ALL {
        assert_eq!(resize_rgb8(&img, 13, 7, 13, 7, f), img, "{f:?}");
    }
}

#[test]
fn constant_image_stays_constant() {
    for v in [0u8, 1, 37, 128, 254, 255] {
        let img = vec![v; 11 * 9 * 3];
        for f in ALL {
            for (nw, nh) in [(5, 4), (23, 19), (11, 3), (2, 9), (1, 1), (40, 2)] {
                let out = resize_rgb8(&img, 11, 9, nw, nh, f);
                assert_eq!(out.len(), nw * nh * 3);
                assert!(
                    out.iter().all(|&x| x == v),
                    "{f:?} {v} -> {nw}x{nh}: {out:?}"
                );
            }
        }
    }
}

#[test]
fn hand_checked_bilinear_halving() {
    // 2x1 -> 1x1 bilinear: scale 2, support 2, center 1.0, taps at x = 0, 1 with raw
    // weights 0.75, 0.75 -> 0.5, 0.5 -> 2^21 each; (10 + 21) * 2^21 + 2^21 = 16 * 2^22.
    let src = [10, 100, 0, 21, 200, 255];
    assert_eq!(
        resize_rgb8(&src, 2, 1, 1, 1, Filter::Bilinear),
        vec![16, 150, 128]
    );
    // Same vertically (1x2 -> 1x1).
    assert_eq!(
        resize_rgb8(&src, 1, 2, 1, 1, Filter::Bilinear),
        vec![16, 150, 128]
    );
}

#[test]
fn coefficients_match_pillow_rounding() {
    // 2 -> 1 bilinear, see above.
    let c = Coeffs::new(2, 1, Filter::Bilinear);
    assert_eq!(
        (c.ksize, c.bounds.clone(), c.k.clone()),
        (5, vec![(0, 2)], vec![1 << 21, 1 << 21, 0, 0, 0])
    );
    // Upscaling 1 -> 3 with lanczos: the only tap gets all the weight.
    let c = Coeffs::new(1, 3, Filter::Lanczos);
    assert_eq!(c.bounds, vec![(0, 1); 3]);
    assert!(c
        .bounds
        .iter()
        .enumerate()
        .all(|(i, _)| c.taps(i).1 == [1 << 22]));
}

#[test]
fn lanczos_clips_overshoot() {
    // A black/white step overshoots with lanczos; the result must clamp, not wrap.
    let mut src = Vec::new();
    for x in 0..8 {
        src.extend_from_slice(&[if x < 4 { 0 } else { 255 }; 3]);
    }
    let out = resize_rgb8(&src, 8, 1, 21, 1, Filter::Lanczos);
    assert_eq!(&out[..3], &[0, 0, 0]);
    assert_eq!(&out[out.len() - 3..], &[255, 255, 255]);
    // Monotone except for the (clamped) ringing: no wrapped values in the middle.
    assert!(out.chunks(3).skip(12).all(|p| p[0] > 128), "{out:?}");
}

#[test]
fn alpha_hand_checked() {
    let src = [
        1, 2, 3, 0, // transparent -> white
        10, 20, 30, 255, // opaque -> unchanged
        0, 0, 0, 128, // half black over white: 127 (see derivation below)
        200, 100, 50, 1,
    ];
    // alpha 128 over opaque white: coef1 = 128*128 = 16384, coef2 = 32640 - 16384 =
    // 16256; tmp = 255*16256 + (128 << 7) = 4161664; (tmp >> 8) + tmp = 4177920;
    // >> 8 = 16320; >> 7 = 127.
    let out = alpha_over_white_rgba8(&src);
    assert_eq!(&out[..9], &[255, 255, 255, 10, 20, 30, 127, 127, 127]);
    assert_eq!(out.len(), 12);
}

#[derive(serde::Deserialize)]
struct Golden {
    pillow_version: String,
    pass_order: String,
    images: std::collections::HashMap<String, GoldenImage>,
    resize_cases: Vec<ResizeCase>,
    alpha_cases: Vec<AlphaCase>,
}

#[derive(serde::Deserialize)]
struct GoldenImage {
    w: usize,
    h: usize,
    channels: usize,
    data: Vec<u8>,
}

#[derive(serde::Deserialize)]
struct ResizeCase {
    image: String,
    composite_white: bool,
    filter: String,
    new_w: usize,
    new_h: usize,
    expected: Vec<u8>,
}

#[derive(serde::Deserialize)]
struct AlphaCase {
    image: String,
    expected: Vec<u8>,
}

fn golden() -> Golden {
    serde_json::from_str(include_str!("../../../tests/fixtures/resample_golden.json"))
        .expect("resample_golden.json parses")
}

fn filter_by_name(name: &str) -> Filter {
    match name {
        "nearest" => Filter::Nearest,
        "lanczos" => Filter::Lanczos,
        "bilinear" => Filter::Bilinear,
        "bicubic" => Filter::Bicubic,
        "box" => Filter::Box,
        "hamming" => Filter::Hamming,
        other => panic!("unknown filter {other}"),
    }
}

#[test]
fn golden_alpha_composite_matches_pillow() {
    let g = golden();
    assert!(!g.alpha_cases.is_empty());
    for case in &g.alpha_cases {
        let img = &g.images[&case.image];
        assert_eq!(img.channels, 4);
        assert_eq!(img.data.len(), img.w * img.h * 4);
        let alphas: Vec<u8> = img.data.iter().skip(3).step_by(4).copied().collect();
        assert!(alphas.contains(&0) && alphas.contains(&255));
        assert_eq!(
            alpha_over_white_rgba8(&img.data),
            case.expected,
            "alpha composite of {} (Pillow {})",
            case.image,
            g.pillow_version
        );
    }
}

#[test]
fn golden_resize_matches_pillow() {
    let g = golden();
    let order = match g.pass_order.as_str() {
        "auto" => PassOrder::Auto,
        "horizontal_first" => PassOrder::HorizontalFirst,
        other => panic!("unknown pass order {other}"),
    };
    assert!(g.resize_cases.len() >= 20);
    let mut failures = Vec::new();
    for case in &g.resize_cases {
        let img = &g.images[&case.image];
        let (src, c) = if case.composite_white {
            (alpha_over_white_rgba8(&img.data), 4)
        } else {
            (img.data.clone(), 3)
        };
        assert_eq!(img.channels, c);
        let f = filter_by_name(&case.filter);
        let out = resize_rgb8_with_order(&src, img.w, img.h, case.new_w, case.new_h, f, order);
        assert_eq!(out.len(), case.expected.len());
        if out != case.expected {
            let diffs = out
                .iter()
                .zip(&case.expected)
                .filter(|(a, b)| a != b)
                .count();
            let maxd = out
                .iter()
                .zip(&case.expected)
                .map(|(&a, &b)| (a as i32 - b as i32).abs())
                .max()
                .unwrap();
            failures.push(format!(
                "{} {}x{} -> {}x{} {:?}: {diffs} bytes differ (max {maxd})",
                case.image, img.w, img.h, case.new_w, case.new_h, f
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "mismatches vs Pillow {}:\n{}",
        g.pillow_version,
        failures.join("\n")
    );
}
