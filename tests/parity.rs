//! Parity with HF transformers on the committed tiny checkpoints (tests/fixtures/make_fixtures.py).
//!
//! Tolerances: pixel values bit-identical (the resampler reproduces Pillow's integer arithmetic and
//! the u8 -> float step is numpy's expression, see src/preprocess), hidden states, attention maps, connector output and logits max |diff| <= 1e-4, identical greedy
//! tokens and identical prompt token ids. Every model check runs on flex (CPU) and on wgpu (lavapipe
//! natively, the same WGSL kernels the browser runs).

use crate::common;

use burn::tensor::{Tensor, TensorData};
use common::*;
use zoo_prune_web::readback::read_floats;
use zoo_prune_web::model::ForwardOptions;
use zoo_prune_web::preprocess::RgbImage;

const MODELS: &[&str] = &["tiny_single", "tiny_tiles"];
const TOL: f32 = 1e-4;

fn floats<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    pollster::block_on(read_floats(t)).unwrap()
}

fn photo() -> RgbImage {
    RgbImage::decode(&std::fs::read(fixtures().join("photo.png")).unwrap()).unwrap()
}

/// Every value equal to the bit; the message counts the ones that are not and gives the largest gap.
fn assert_bit_identical(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: pixel count");
    let differ = got.iter().zip(want).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
    assert_eq!(differ, 0, "{what}: {differ} pixel values differ from HF's (max |diff| {})", max_abs_diff(got, want));
}

#[test]
fn pixel_values_match_hf_image_processor() {
    for m in MODELS {
        let vlm = load_vlm(m, "flex");
        let r = Reference::load(m);
        let (want, shape) = r.tensor("pixel_values");
        let got = vlm.preprocess(&photo(), None).unwrap();
        assert_eq!(got.num_tiles, shape[0], "{m}: tile count");
        assert_eq!(got.num_tiles, r.json["num_tiles"].as_u64().unwrap() as usize);
        assert_bit_identical(&got.pixels, &want, m);
    }
}

#[test]
fn rgba_is_composited_over_white_like_hf() {
    let vlm = load_vlm("tiny_tiles", "flex");
    let bytes = std::fs::read(fixtures().join("tiny_tiles/reference_rgba.safetensors")).unwrap();
    let (want, shape) = read_f32(&bytes, "pixel_values");
    let img = RgbImage::decode(&std::fs::read(fixtures().join("photo_rgba.png")).unwrap()).unwrap();
    let got = vlm.preprocess(&img, None).unwrap();
    assert_eq!(got.num_tiles, shape[0]);
    assert_bit_identical(&got.pixels, &want, "tiny_tiles RGBA");
}

#[test]
fn prompt_ids_match_hf_processor() {
    for m in MODELS {
        let vlm = load_vlm(m, "flex");
        let r = Reference::load(m);
        let img = vlm.preprocess(&photo(), None).unwrap();
        let ids = vlm.prompt_ids(r.json["question"].as_str().unwrap(), &img).unwrap();
        assert_eq!(ids, r.ids("input_ids"), "{m}: prompt token ids");
    }
}

fn check_model(m: &str, backend: &str) {
    let vlm = load_vlm(m, backend);
    let r = Reference::load(m);
    let device = vlm.device.clone();
    // Vision tower on HF's own pixel values, so this isolates the model from preprocessing.
    let (pv, shape) = r.tensor("pixel_values");
    let pixels = Tensor::<4>::from_data(TensorData::new(pv, [shape[0], shape[1], shape[2], shape[3]]), &device);
    let last = vlm.config.vision_config.num_hidden_layers - 1;
    let enc = vlm.model.encode(pixels, &[last]);
    for (name, t) in [
        ("vision_pre_post_layernorm", enc.pre_ln.clone()),
        ("vision_post_layernorm", vlm.model.vision.post_layernorm.forward(enc.pre_ln.clone())),
        ("vision_last_attention_mean", enc.attentions[0].1.clone()),
        ("connector", enc.features.clone()),
    ] {
        let (want, wshape) = r.tensor(name);
        assert_eq!(t.dims().to_vec(), wshape, "{m}/{backend}: {name} shape");
        let d = max_abs_diff(&floats(t), &want);
        assert!(d <= TOL, "{m}/{backend}: {name} max |diff| {d} > {TOL}");
    }
    // Logits over the whole prompt.
    let ids = r.ids("input_ids");
    let [t, n, dm] = enc.features.dims();
    let features = enc.features.clone().reshape([t * n, dm]);
    let embeds = vlm.model.merge_embeds(&ids, vlm.config.image_token_id, Some(features.clone())).unwrap();
    let mut cache = vlm.model.text.new_cache();
    let out = vlm.model.text.forward(embeds, &mut cache, &ForwardOptions::default());
    let logits = vlm.model.text.logits(out.hidden);
    let (want, wshape) = r.tensor("logits");
    assert_eq!(logits.dims()[1..].to_vec(), wshape, "{m}/{backend}: logits shape");
    let d = max_abs_diff(&floats(logits), &want);
    assert!(d <= TOL, "{m}/{backend}: logits max |diff| {d} > {TOL}");
    // Greedy decoding with the KV cache, token by token.
    let want = r.ids("greedy_new_tokens");
    let max_new = r.json["max_new_tokens"].as_u64().unwrap() as usize;
    let mut gen = vlm.start_answer(&ids, features, &ForwardOptions::default(), max_new).unwrap();
    let mut got = Vec::new();
    while let Some(tok) = pollster::block_on(gen.next_token(&vlm.model)).unwrap() {
        got.push(tok);
    }
    let eos = r.json["eos_token_id"].as_u64().unwrap() as u32;
    let want_wo_eos: Vec<u32> = want.iter().copied().take_while(|&t| t != eos).collect();
    assert_eq!(got, want_wo_eos, "{m}/{backend}: greedy tokens");
}

#[test]
fn model_matches_hf_on_flex() {
    for m in MODELS {
        check_model(m, "flex");
    }
}

#[test]
fn model_matches_hf_on_wgpu() {
    for m in MODELS {
        check_model(m, "wgpu");
    }
}
