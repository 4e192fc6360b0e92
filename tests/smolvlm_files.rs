//! SmolVLM-256M-Instruct's published files and their real layout, against HF transformers.
//!
//! - `tests/fixtures/smolvlm-256m-instruct/`: the hub's own files, weights excepted (SOURCE.md).
//! - `tests/fixtures/smolvlm_prompt_ids.json`: `Idefics3Processor.from_pretrained` on those files
//!   (their chat_template.json, tokenizer and image processor) for several questions and layouts.
//! - `tests/fixtures/smolvlm_layout/`: a checkpoint with the published config at small widths, the
//!   real tokenizer (49 280 tokens), 512 px tiles, 16 px patches, scale factor 4, bf16 weights with the
//!   hub's names, and transformers' outputs on a real photo tiled 4x4 + global (1141 prompt ids).
//!
//! All made by `tests/fixtures/make_smolvlm_fixtures.py`. Tolerances, and why:
//! - token ids, tile grids, greedy tokens, the streamed text: identical;
//! - pixel values: bit-identical (our LANCZOS reproduces Pillow's integer arithmetic, and the u8 ->
//!   float step is the same numpy expression);
//! - logits (prefill, every decode step, pruned prefill): max |diff| <= 1e-4. Both sides compute in
//!   f32 from the same bf16 weights; logits are O(1-10), so 1e-4 is ~1e-5 relative, room for f32
//!   summation-order differences over a 1141-token attention (measured 2026-11-29, largest over
//!   prefill, decode steps and pruned prefill: 1.6e-5 on flex, 1.2e-5 on wgpu/lavapipe;
//!   `--nocapture` prints each);
//! - FastV and VisionZip scores (attention probabilities, mean 8.6e-4 and 1.6e-2): max |diff| <=
//!   1e-7, 0.01 % of the mean FastV score (measured 7e-9 on both backends).

use crate::common;

use burn::tensor::Tensor;
use common::*;
use serde_json::Value;
use zoo_prune_web::config::Idefics3Config;
use zoo_prune_web::readback::read_floats;
use zoo_prune_web::model::ForwardOptions;
use zoo_prune_web::preprocess::{Filter, ProcessorConfig, RgbImage};
use zoo_prune_web::prompt::{PromptTokenizer, TextStream};
use zoo_prune_web::prune::{rank, BudgetMode, Method, Positions, PruneInputs};

const LOGIT_TOL: f32 = 1e-4;
const ATTENTION_TOL: f32 = 1e-7;

fn published(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join("smolvlm-256m-instruct").join(name)).unwrap()
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

fn floats<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    pollster::block_on(read_floats(t)).unwrap()
}

#[test]
fn published_config_reads_as_smolvlm_256m() {
    let c = Idefics3Config::from_json(&published("config.json")).unwrap();
    assert_eq!(c.model_type.as_deref(), Some("idefics3"));
    assert_eq!((c.image_token_id, c.scale_factor, c.tied_embeddings()), (49190, 4, false));
    let v = &c.vision_config;
    assert_eq!(
        (v.hidden_size, v.intermediate_size, v.num_hidden_layers, v.num_attention_heads, v.num_channels),
        (768, 3072, 12, 12, 3)
    );
    assert_eq!((v.image_size, v.patch_size, v.patches_per_side(), v.head_dim()), (512, 16, 32, 64));
    assert_eq!((v.hidden_act.as_str(), v.layer_norm_eps), ("gelu_pytorch_tanh", 1e-6));
    let t = &c.text_config;
    assert_eq!((t.vocab_size, t.hidden_size, t.intermediate_size, t.num_hidden_layers), (49280, 576, 1536, 30));
    assert_eq!((t.num_attention_heads, t.num_kv_heads(), t.head_dim()), (9, 3, 64));
    assert_eq!((t.hidden_act.as_str(), t.rms_norm_eps, t.max_position_embeddings), ("silu", 1e-5, 8192));
    // an integer 100000 at text_config level (transformers 4.46), no rope_parameters
    assert_eq!(t.rope_theta(), 100000.0);
    assert!(t.rope_parameters.is_none());
    assert_eq!((t.attention_bias, t.mlp_bias), (false, false));
    assert_eq!(c.tokens_per_tile(), 64);
    // processor_config.json's image_seq_len is what the config gives per tile
    assert_eq!(json(&published("processor_config.json"))["image_seq_len"], 64);

    let p = ProcessorConfig::from_json(&published("preprocessor_config.json"), v.image_size).unwrap();
    assert_eq!((p.longest_edge, p.tile, p.do_image_splitting, p.resample), (2048, 512, true, Filter::Lanczos));
    assert_eq!((p.image_mean, p.image_std), ([0.5; 3], [0.5; 3]));
    assert_eq!(p.rescale_factor, 0.00392156862745098);
    // the 96x64 test photo: 2048 x 1366 -> 2048 x 1536, a 3x4 grid + the global image
    let l = p.layout(96, 64);
    assert_eq!((l.rows, l.cols, l.num_tiles), (3, 4, 13));
}

#[test]
fn prompt_ids_match_idefics3_processor_on_the_real_tokenizer() {
    let tok = PromptTokenizer::from_bytes(&published("tokenizer.json"), 49190, &[49279]).unwrap();
    assert_eq!(tok.tokenizer.get_vocab_size(true), 49280);
    let proc = ProcessorConfig::from_json(&published("preprocessor_config.json"), 512).unwrap();
    let reference = json(&std::fs::read(fixtures().join("smolvlm_prompt_ids.json")).unwrap());
    let cases = reference["cases"].as_array().unwrap();
    let mut layouts = std::collections::BTreeSet::new();
    let mut refused = 0;
    for case in cases {
        let q = case["question"].as_str().unwrap();
        let name = case["layout"].as_str().unwrap();
        let cfg = match case["max_grid"].as_u64() {
            Some(g) => proc.clone().with_max_grid(g as usize),
            None => proc.clone(),
        };
        let (w, h) = (case["width"].as_u64().unwrap() as usize, case["height"].as_u64().unwrap() as usize);
        let layout = cfg.layout(w, h);
        let want_grid = (case["rows"].as_u64().unwrap() as usize, case["cols"].as_u64().unwrap() as usize);
        assert_eq!((layout.rows, layout.cols), want_grid, "{name}: tile grid of a {w}x{h} image");
        let want: Vec<u32> = case["input_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        let got = tok.prompt_ids(q, layout.rows, layout.cols, 64).unwrap();
        if got != want {
            let at = got.iter().zip(&want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
            panic!(
                "{name} / {q:?}: ids differ at {at} (ours {} ids, HF {}): ours {:?}, HF {:?}",
                got.len(),
                want.len(),
                &got[at.saturating_sub(2)..(at + 4).min(got.len())],
                &want[at.saturating_sub(2)..(at + 4).min(want.len())]
            );
        }
        // one image's worth of <image> tokens, whatever the question says
        let images = got.iter().filter(|&&t| t == 49190).count();
        assert_eq!(images, layout.num_tiles * 64, "{name} / {q:?}: <image> tokens");
        if !case["processor_refused"].is_null() {
            refused += 1;
            assert!(q.contains("<image>"));
        }
        layouts.insert(name.to_string());
    }
    assert_eq!(cases.len(), 20, "5 questions x 4 layouts");
    assert_eq!(layouts.len(), 4);
    assert_eq!(refused, 4, "the question containing <image> in each layout");
}

struct Layout {
    vlm: zoo_prune_web::Vlm,
    r: Reference,
}

fn layout(backend: &str) -> Layout {
    Layout { vlm: load_vlm("smolvlm_layout", backend), r: Reference::load("smolvlm_layout") }
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

fn photo() -> RgbImage {
    RgbImage::decode(&std::fs::read(fixtures().join("photo_square.png")).unwrap()).unwrap()
}

#[test]
fn generation_config_eos_is_used() {
    // generation_config.json says 49279 (<end_of_utterance>); special_tokens_map.json says
    // <|im_end|> (2): generation follows generation_config, as transformers' generate does.
    let l = layout("flex");
    assert_eq!(l.vlm.tokenizer.eos_ids, vec![49279]);
}

#[test]
fn pixel_values_are_bit_identical_to_hf_on_a_4x4_grid() {
    let l = layout("flex");
    let got = l.vlm.preprocess(&photo(), None).unwrap();
    assert_eq!((got.rows, got.cols, got.num_tiles), (4, 4, 17));
    assert_eq!(got.num_tiles, l.r.json["num_tiles"].as_u64().unwrap() as usize);
    let (lut, _) = l.r.tensor("pixel_code_values");
    let codes = RgbImage::decode(&std::fs::read(fixtures().join("smolvlm_layout/pixel_codes.png")).unwrap()).unwrap();
    let t = got.tile;
    assert_eq!((codes.width, codes.height), (t, t * got.num_tiles));
    let mut differ = 0;
    let mut first = None;
    for tile in 0..got.num_tiles {
        for ch in 0..3 {
            for y in 0..t {
                for x in 0..t {
                    let code = codes.data[((tile * t + y) * t + x) * 3 + ch] as usize;
                    let want = lut[code];
                    let have = got.pixels[((tile * 3 + ch) * t + y) * t + x];
                    if have.to_bits() != want.to_bits() {
                        differ += 1;
                        first.get_or_insert((tile, ch, y, x, have, want));
                    }
                }
            }
        }
    }
    assert_eq!(differ, 0, "{differ} pixel values differ from HF's; first (tile, ch, y, x, ours, HF): {first:?}");
}

fn check_layout(backend: &str) {
    let Layout { vlm, r } = layout(backend);
    let question = r.json["question"].as_str().unwrap();
    let processed = vlm.preprocess(&photo(), None).unwrap();
    let prompt = vlm.prompt_ids(question, &processed).unwrap();
    assert_eq!(prompt, ids(&r.json["input_ids"]), "{backend}: prompt ids");
    assert!(prompt.len() > 1100);
    let last_layer = vlm.config.vision_config.num_hidden_layers - 1;
    let enc = pollster::block_on(vlm.encode_until(processed, 4, &[last_layer], |_, _| std::future::ready(true))).unwrap();
    let features = enc.features();
    let image = vlm.config.image_token_id;

    // Prefill: the logits of the last positions.
    let k = r.json["last_positions"].as_u64().unwrap() as usize;
    let embeds = vlm.model.merge_embeds(&prompt, image, Some(features.clone())).unwrap();
    let mut cache = vlm.model.text.new_cache();
    let out = vlm.model.text.forward(embeds, &mut cache, &ForwardOptions::default());
    let n = out.hidden.dims()[1];
    let logits = floats(vlm.model.text.logits(out.hidden.narrow(1, n - k, k)));
    let (want, shape) = r.tensor("prefill_logits_last");
    assert_eq!(shape, vec![k, 49280]);
    let d = max_abs_diff(&logits, &want);
    assert!(d <= LOGIT_TOL, "{backend}: prefill logits max |diff| {d}");
    eprintln!("{backend}: prefill logits max |diff| {d:.2e}");

    // Every greedy decode step through the KV cache, its full logits, up to and including eos.
    let greedy = ids(&r.json["greedy_new_tokens"]);
    let (steps, shape) = r.tensor("decode_step_logits");
    let v = shape[1];
    assert_eq!(shape[0], greedy.len());
    assert!(greedy.len() >= 9, "at least 8 decode steps after the prefill's token");
    let mut row = logits[(k - 1) * v..].to_vec();
    let mut worst = 0f32;
    for (step, &want_tok) in greedy.iter().enumerate() {
        let d = max_abs_diff(&row, &steps[step * v..(step + 1) * v]);
        assert!(d <= LOGIT_TOL, "{backend}: decode step {step} logits max |diff| {d}");
        worst = worst.max(d);
        let tok = row.iter().enumerate().fold(0, |b, (i, &x)| if x > row[b] { i } else { b }) as u32;
        assert_eq!(tok, want_tok, "{backend}: greedy token at step {step}");
        if step + 1 < greedy.len() {
            let emb = vlm.model.text.embed(&[tok]).unsqueeze::<3>();
            let out = vlm.model.text.forward(emb, &mut cache, &ForwardOptions::default());
            row = floats(vlm.model.text.logits(out.hidden));
        }
    }
    eprintln!("{backend}: {} decode steps, logits max |diff| {worst:.2e}", greedy.len());

    // The streaming path the CLI and page use: same tokens, stops on generation_config's eos
    // (which it does not emit), and the streamed pieces join to transformers' decode.
    let eos = r.json["eos_token_id"].as_u64().unwrap() as u32;
    let max_new = r.json["max_new_tokens"].as_u64().unwrap() as usize;
    let mut gen = vlm.start_answer(&prompt, features.clone(), &ForwardOptions::default(), max_new).unwrap();
    let mut stream = TextStream::default();
    let mut text = String::new();
    let mut got = Vec::new();
    while let Some(tok) = pollster::block_on(gen.next_token(&vlm.model)).unwrap() {
        got.push(tok);
        text.push_str(&stream.push(&vlm.tokenizer, tok).unwrap());
    }
    assert_eq!(greedy.last(), Some(&eos));
    assert_eq!(got, greedy[..greedy.len() - 1], "{backend}: streamed tokens");
    assert!(got.len() < max_new, "stopped by eos, not by the length limit");
    assert_eq!(text, r.json["decoded_text"].as_str().unwrap(), "{backend}: streamed text");

    // Pruned prefill against transformers fed the kept tokens as inputs_embeds.
    let keep: Vec<usize> = ids(&r.json["pruned_keep"]).into_iter().map(|x| x as usize).collect();
    let p = vlm.pruned_prefill(&prompt, features.clone(), &keep, None, Positions::Renumber).unwrap();
    assert_eq!(p.ids, ids(&r.json["pruned_input_ids"]), "{backend}: pruned prompt ids");
    let mut cache = vlm.model.text.new_cache();
    let out = vlm.model.text.forward(p.embeds, &mut cache, &p.opts);
    let n = out.hidden.dims()[1];
    let logits = floats(vlm.model.text.logits(out.hidden.narrow(1, n - k, k)));
    let d = max_abs_diff(&logits, &r.tensor("pruned_prefill_logits_last").0);
    assert!(d <= LOGIT_TOL, "{backend}: pruned prefill logits max |diff| {d}");
    eprintln!("{backend}: pruned prefill ({} of {} ids) logits max |diff| {d:.2e}", p.ids.len(), prompt.len());

    // Both position choices against transformers (make_positions_fixtures.py): the kept tokens'
    // embeddings with explicit position_ids, renumbered 0..L-1 or kept from the full prompt (gaps),
    // then greedy decoding through the KV cache at the following positions.
    let dir = fixtures().join("smolvlm_layout");
    let pref = json(&std::fs::read(dir.join("positions_reference.json")).unwrap());
    let pbytes = std::fs::read(dir.join("positions_reference.safetensors")).unwrap();
    let eos = r.json["eos_token_id"].as_u64().unwrap() as u32;
    for (name, positions) in [("renumber", Positions::Renumber), ("keep", Positions::Keep)] {
        let (want, shape) = read_f32(&pbytes, &format!("{name}_logits"));
        let v = shape[1];
        let p = vlm.pruned_prefill(&prompt, features.clone(), &keep, None, positions).unwrap();
        if positions == Positions::Keep {
            let at: Vec<usize> = ids(&pref["kept_positions"]).into_iter().map(|x| x as usize).collect();
            assert_eq!(p.opts.positions.as_ref(), Some(&at), "kept positions");
        }
        // the prefill's last logits, then each decode step's, at explicit positions (as HF was fed)
        let mut cache = vlm.model.text.new_cache();
        let out = vlm.model.text.forward(p.embeds, &mut cache, &p.opts);
        let n = out.hidden.dims()[1];
        let mut row = floats(vlm.model.text.logits(out.hidden.narrow(1, n - 1, 1)));
        let mut next = p.opts.positions.as_ref().map_or(n, |a| a.iter().max().unwrap() + 1);
        let mut worst = 0f32;
        for step in 0..shape[0] {
            worst = worst.max(max_abs_diff(&row, &want[step * v..(step + 1) * v]));
            let tok = row.iter().enumerate().fold((0, f32::MIN), |b, (i, &x)| if x > b.1 { (i, x) } else { b }).0;
            let emb = vlm.model.text.embed(&[tok as u32]).unsqueeze::<3>();
            let opts = ForwardOptions { positions: Some(vec![next]), ..Default::default() };
            row = floats(vlm.model.text.logits(vlm.model.text.forward(emb, &mut cache, &opts).hidden));
            next += 1;
        }
        assert!(worst <= LOGIT_TOL, "{backend}: {name} positions: logits max |diff| {worst}");
        // the streaming path: transformers' greedy tokens up to its first eos
        let mut gen = vlm.start_answer_pruned(&prompt, features.clone(), &keep, None, positions, 10).unwrap();
        let mut got = vec![];
        while let Some(t) = pollster::block_on(gen.next_token(&vlm.model)).unwrap() {
            got.push(t);
        }
        let hf = ids(&pref[&format!("{name}_tokens")]);
        let until_eos: Vec<u32> = hf.iter().copied().take_while(|&t| t != eos).collect();
        assert_eq!(got, until_eos, "{backend}: {name} positions: greedy tokens");
        eprintln!("{backend}: {name} positions: {} logit rows max |diff| {worst:.2e}, tokens {got:?}", shape[0]);
    }
    assert_ne!(ids(&pref["renumber_tokens"]), ids(&pref["keep_tokens"]), "the two choices answer differently here");

    // FastV and VisionZip scores against transformers' attention maps.
    let q_ids = vlm.tokenizer.question_ids(question).unwrap();
    let inputs = PruneInputs::new(&vlm.model, &enc.tiles, image, &prompt, &q_ids);
    for (method, name) in [
        (Method::FastV { layer: r.json["fastv_layer"].as_u64().unwrap() as usize }, "fastv_scores"),
        (Method::VisionZip { layer: Some(r.json["visionzip_layer"].as_u64().unwrap() as usize) }, "visionzip_scores"),
    ] {
        let ranking = pollster::block_on(rank(&method, &inputs, BudgetMode::Global)).unwrap();
        let got: Vec<f32> = ranking.scores.iter().map(|&x| x as f32).collect();
        let (want, _) = r.tensor(name);
        let d = max_abs_diff(&got, &want);
        assert!(d <= ATTENTION_TOL, "{backend}: {name} max |diff| {d}");
        eprintln!("{backend}: {name} max |diff| {d:.2e} (mean {:.2e})", want.iter().sum::<f32>() / want.len() as f32);
    }
}

#[test]
fn real_layout_matches_hf_on_flex() {
    check_layout("flex");
}

#[test]
fn real_layout_matches_hf_on_wgpu() {
    check_layout("wgpu");
}
