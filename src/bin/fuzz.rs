//! Fuzzing on stable Rust: a seeded mutation loop over every parser the page feeds with a person's
//! bytes. A panic in wasm kills the model (the page then offers a reload), so none of these may
//! panic: each must return an error or work.
//!
//! Targets (each case starts from a valid file and mutates it: bytes, or the parsed JSON tree, or
//! the file's structure):
//! - `safetensors`: model.safetensors (header JSON entries, dtypes, shapes, offsets, the header
//!   length, truncation, NaN / Inf weights) through `Vlm::load` with a small config;
//! - `config`: config.json (and now and then generation_config.json) through `Vlm::load`;
//! - `preprocessor`: preprocessor_config.json, then preprocessing an image of a random size;
//! - `image`: PNG (several colour types, IHDR sizes with valid CRCs), JPEG, GIF and WebP bytes
//!   through `RgbImage::decode` and preprocessing;
//! - `tokenizer`: tokenizer.json through the prompt builder, decoding and streaming;
//! - `question`: random text (special-token text, control characters, long) as the question.
//! A model that loads goes on (every accepted config, one in `--exercise-every` for safetensors,
//! image and question) through encode, a ranking by a random method, and a short answer, so that
//! what a mutation let through is used as the page would use it; preprocessor cases stop after
//! preprocessing and token geometry, tokenizer cases after prompt building, decoding, streaming.
//!
//! Also reported: the largest single allocation a case asked for (the wasm heap is at most 4 GiB:
//! an input that makes the code ask for more than `--max-alloc-mib` is a finding too) and the
//! slowest case. Case i of a target is reproducible alone: `--target T --first-case i --cases 1`.
//!
//! `cargo run --release --bin fuzz -- --cases 1000000 --seconds 3600` (all targets).
//! FUZZ_BACKTRACE=1 adds each panic's backtrace. Prints one line per target; exits 1 when any panic or oversized allocation was found.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde_json::{json, Value};
use zoo_prune_web::config::Idefics3Config;
use zoo_prune_web::rng::SplitMix64;
use zoo_prune_web::prune::{budget, rank, BudgetMode, Method, Positions, PruneInputs};
use zoo_prune_web::preprocess::{ProcessedImage, ProcessorConfig, RgbImage};
use zoo_prune_web::prompt::{PromptTokenizer, TextStream};
use zoo_prune_web::random_weights::random_checkpoint;
use zoo_prune_web::{ModelFiles, Vlm};

// ---- the largest single allocation, per case

struct Tracking;
static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LARGEST.fetch_max(l.size(), Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        LARGEST.fetch_max(l.size(), Ordering::Relaxed);
        System.alloc_zeroed(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LARGEST.fetch_max(new, Ordering::Relaxed);
        System.realloc(p, l, new)
    }
}

#[global_allocator]
static ALLOC: Tracking = Tracking;

// ---- random choices

struct Rng(SplitMix64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            self.0.below(n as u64) as usize
        }
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
    fn byte(&mut self) -> u8 {
        self.0.next_u64() as u8
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

// ---- byte mutations

const INTERESTING_U32: &[u32] =
    &[0, 1, 2, 3, 7, 8, 15, 16, 255, 256, 4095, 65535, 65536, 40000, 1 << 24, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff];

fn mutate_bytes(rng: &mut Rng, b: &mut Vec<u8>) {
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        let n = b.len();
        match rng.below(9) {
            0 if n > 0 => {
                let i = rng.below(n);
                b[i] ^= 1 << rng.below(8);
            }
            1 if n > 0 => {
                let i = rng.below(n);
                b[i] = rng.byte();
            }
            2 if n > 0 => b.truncate(rng.below(n)),
            3 => {
                let i = rng.below(n + 1);
                let k = 1 + rng.below(16);
                let ins: Vec<u8> = (0..k).map(|_| rng.byte()).collect();
                b.splice(i..i, ins);
            }
            4 if n > 1 => {
                let i = rng.below(n);
                let k = 1 + rng.below((n - i).min(64));
                b.drain(i..i + k);
            }
            5 if n > 4 => {
                let i = rng.below(n - 3);
                let v = *rng.pick(INTERESTING_U32);
                let bytes = if rng.chance(2) { v.to_be_bytes() } else { v.to_le_bytes() };
                b[i..i + 4].copy_from_slice(&bytes);
            }
            6 if n > 8 => {
                // copy a chunk elsewhere (repeated structures: chunks, markers)
                let i = rng.below(n);
                let k = 1 + rng.below((n - i).min(256));
                let chunk = b[i..i + k].to_vec();
                let j = rng.below(n + 1);
                b.splice(j..j, chunk);
            }
            7 if n > 0 => {
                let i = rng.below(n);
                b[i] = *rng.pick(&[0u8, 0x7f, 0x80, 0xff, b'{', b'"', b'[', b'0', b'9', b'-', b'e', b'.']);
            }
            _ if n > 0 => {
                let i = rng.below(n);
                b[i] = b[i].wrapping_add(1 + rng.below(3) as u8);
            }
            _ => b.push(rng.byte()),
        }
    }
}

// ---- JSON tree mutations

fn interesting_json(rng: &mut Rng) -> Value {
    match rng.below(22) {
        0 => json!(0),
        1 => json!(1),
        2 => json!(-1),
        3 => json!(2),
        4 => json!(3),
        5 => json!(65536),
        6 => json!(4_294_967_296u64),
        7 => json!(u64::MAX),
        8 => json!(i64::MIN),
        9 => json!(1e308),
        10 => json!(-1e308),
        11 => json!(1e-300),
        12 => json!(0.5),
        13 => json!(-0.0),
        14 => json!(""),
        15 => json!("x".repeat(1 + rng.below(3000))),
        16 => Value::Null,
        17 => json!(true),
        18 => json!([]),
        19 => json!({}),
        20 => json!([1, 2, 3]),
        _ => json!("\u{0}<image>\u{fffd}é"),
    }
}

fn count_nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count_nodes).sum(),
        Value::Object(o) => o.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// Applies `f` to the `i`-th node in pre-order (0 = the root); false when there are fewer nodes.
fn with_nth_node(v: &mut Value, i: &mut usize, f: &mut dyn FnMut(&mut Value)) -> bool {
    if *i == 0 {
        f(v);
        return true;
    }
    *i -= 1;
    match v {
        Value::Array(a) => a.iter_mut().any(|c| with_nth_node(c, i, f)),
        Value::Object(o) => o.values_mut().any(|c| with_nth_node(c, i, f)),
        _ => false,
    }
}

fn mutate_node(rng: &mut Rng, node: &mut Value) {
    match node {
        Value::Number(n) if rng.chance(2) => {
            let f = n.as_f64().unwrap_or(0.0);
            *node = match rng.below(6) {
                0 => json!(f + 1.0),
                1 => json!((f - 1.0).round() as i64),
                2 => json!(f * 2f64.powi(rng.below(40) as i32)),
                3 => json!(-f),
                4 => json!(f / 3.0),
                _ => json!(n.as_u64().map(|u| u.wrapping_mul(1 << rng.below(20))).unwrap_or(7)),
            };
        }
        Value::String(s) if rng.chance(2) => {
            match rng.below(4) {
                0 => s.clear(),
                1 => s.push_str(&s.clone()),
                2 => {
                    let cut = s.char_indices().nth(rng.below(s.chars().count().max(1))).map_or(0, |(i, _)| i);
                    s.truncate(cut)
                }
                _ => s.insert(0, *rng.pick(&['\u{0}', 'Ġ', '<', '\u{10ffff}', ' ', '\\'])),
            };
        }
        Value::Array(a) if !a.is_empty() && rng.chance(2) => {
            match rng.below(3) {
                0 => {
                    a.remove(rng.below(a.len()));
                }
                1 => {
                    let c = a[rng.below(a.len())].clone();
                    a.insert(rng.below(a.len() + 1), c);
                }
                _ => a.reverse(),
            };
        }
        Value::Object(o) if !o.is_empty() && rng.chance(2) => {
            let keys: Vec<String> = o.keys().cloned().collect();
            let k = rng.pick(&keys).clone();
            if rng.chance(2) {
                o.remove(&k);
            } else {
                let v = o.remove(&k).unwrap();
                o.insert(format!("{k}_"), v);
            }
        }
        _ => *node = interesting_json(rng),
    }
}

fn mutate_json(rng: &mut Rng, v: &mut Value) {
    let rounds = 1 + rng.below(3);
    for _ in 0..rounds {
        let n = count_nodes(v);
        let mut i = rng.below(n);
        with_nth_node(v, &mut i, &mut |node| mutate_node(rng, node));
    }
}

/// A mutated JSON document: tree mutations, then (one case in four) byte mutations of its text.
fn mutated_json_bytes(rng: &mut Rng, base: &Value) -> Vec<u8> {
    let mut v = base.clone();
    if !rng.chance(4) {
        mutate_json(rng, &mut v);
    }
    let mut b = serde_json::to_vec_pretty(&v).unwrap();
    if rng.chance(4) {
        mutate_bytes(rng, &mut b);
    }
    b
}

// ---- structure-aware mutations

const DTYPES: &[&str] = &["F32", "BF16", "F16", "F64", "I8", "U8", "I16", "I32", "I64", "BOOL", "F8_E4M3", "F8_E5M2", "F4", "C64"];

fn mutate_safetensors(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let n = u64::from_le_bytes(base[..8].try_into().unwrap()) as usize;
    let mut header: Value = serde_json::from_slice(&base[8..8 + n]).unwrap();
    let data = &base[8 + n..];
    match rng.below(6) {
        0 => mutate_bytes(rng, &mut base.to_vec()),
        1 | 2 => {
            // one tensor entry: its dtype, shape or offsets
            let names: Vec<String> = header.as_object().unwrap().keys().filter(|k| *k != "__metadata__").cloned().collect();
            let name = rng.pick(&names).clone();
            let e = &mut header[&name];
            match rng.below(4) {
                0 => e["dtype"] = json!(rng.pick(DTYPES)),
                1 => mutate_json(rng, &mut e["shape"]),
                2 => mutate_json(rng, &mut e["data_offsets"]),
                _ => mutate_json(rng, e),
            }
        }
        3 => mutate_json(rng, &mut header),
        _ => {}
    }
    let h = serde_json::to_vec(&header).unwrap();
    let mut out = Vec::with_capacity(8 + h.len() + data.len());
    let mut len = h.len() as u64;
    if rng.chance(16) {
        len = *rng.pick(&[0u64, 1, 7, len - 1, len + 1, len * 2, u64::MAX, 1 << 40]);
    }
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    match rng.below(5) {
        // NaN / Inf / huge weights in the data: loads fine, must not break ranking or decoding
        0 | 1 if data.len() > 2 => {
            let start = 8 + h.len();
            for _ in 0..1 + rng.below(64) {
                let i = start + rng.below(data.len() - 1);
                let v: [u8; 2] = *rng.pick(&[[0xc0, 0x7f], [0x80, 0x7f], [0x80, 0xff], [0x7f, 0x7f], [0, 0]]);
                out[i..i + 2].copy_from_slice(&v);
            }
        }
        2 => mutate_bytes(rng, &mut out),
        _ => {}
    }
    out
}

/// PNG: a changed IHDR (size, bit depth, colour type) with its CRC fixed, so that the decoder reads
/// on instead of stopping at the checksum; else byte mutations.
fn mutate_png(rng: &mut Rng, b: &mut Vec<u8>) {
    if b.len() > 33 && &b[12..16] == b"IHDR" && rng.chance(2) {
        match rng.below(4) {
            0 => b[16..20].copy_from_slice(&rng.pick(INTERESTING_U32).to_be_bytes()),
            1 => b[20..24].copy_from_slice(&rng.pick(INTERESTING_U32).to_be_bytes()),
            2 => b[24] = *rng.pick(&[0u8, 1, 2, 4, 8, 16, 32]),
            _ => b[25] = *rng.pick(&[0u8, 2, 3, 4, 6, 7]),
        }
        let crc = crc32fast::hash(&b[12..29]);
        b[29..33].copy_from_slice(&crc.to_be_bytes());
        if rng.chance(2) {
            return;
        }
    }
    mutate_bytes(rng, b);
}

fn random_question(rng: &mut Rng) -> String {
    const PIECES: &[&str] = &[
        "What colour is the cat?", "<image>", "<fake_token_around_image>", "<global-img>", "<row_1_col_1>",
        "<|im_start|>", "<|im_end|>", "<end_of_utterance>", "Assistant:", "User:", "\n", "\r\n", "\t", " ", "\u{0}",
        "\u{200b}", "\u{feff}", "é", "e\u{301}", "🐈", "日本", "\u{10ffff}", "\u{fffd}", "<", ">", "Ġ", "?", "",
    ];
    let mut s = String::new();
    for _ in 0..rng.below(12) {
        if rng.chance(5) {
            let c = char::from_u32(rng.0.next_u64() as u32 % 0x11_0000).unwrap_or('x');
            s.push(c);
        } else {
            s.push_str(PIECES[rng.below(PIECES.len())]);
        }
    }
    if rng.chance(50) {
        s = s.repeat(1 + rng.below(2000));
    }
    s
}

// ---- the valid starting files

/// A small Idefics3 (tiles of 32 px, 4 visual tokens per tile) on the tiny test tokenizer.
const FUZZ_CONFIG: &str = r#"{"model_type": "idefics3", "image_token_id": 4, "scale_factor": 2,
  "tie_word_embeddings": false,
  "vision_config": {"hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 2,
    "num_attention_heads": 2, "image_size": 32, "patch_size": 8, "layer_norm_eps": 1e-6,
    "hidden_act": "gelu_pytorch_tanh"},
  "text_config": {"model_type": "llama", "vocab_size": 360, "hidden_size": 8,
    "intermediate_size": 16, "num_hidden_layers": 3, "num_attention_heads": 2,
    "num_key_value_heads": 1, "head_dim": 4, "rms_norm_eps": 1e-5,
    "rope_parameters": {"rope_theta": 100000.0, "rope_type": "default"},
    "max_position_embeddings": 2048, "tie_word_embeddings": false}}"#;

const FUZZ_PREPROCESSOR: &str = r#"{"do_convert_rgb": true, "do_image_splitting": true, "do_normalize": true,
  "do_pad": true, "do_rescale": true, "do_resize": true, "image_mean": [0.5, 0.5, 0.5],
  "image_processor_type": "Idefics3ImageProcessor", "image_std": [0.5, 0.5, 0.5],
  "max_image_size": {"longest_edge": 32}, "resample": 1, "rescale_factor": 0.00392156862745098,
  "size": {"longest_edge": 96}}"#;

const FUZZ_GENERATION: &str = r#"{"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}"#;

/// GIF89a, 1 x 1, one white pixel.
const GIF: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 1, 0, 1, 0, 0x80, 0, 0, 0xff, 0xff, 0xff, 0, 0, 0, 0x21, 0xf9, 4, 0, 0, 0, 0,
    0, 0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 1, 0, 0x3b,
];
/// A lossless WebP header of a 1 x 1 image (VP8L).
const WEBP: &[u8] = &[
    b'R', b'I', b'F', b'F', 26, 0, 0, 0, b'W', b'E', b'B', b'P', b'V', b'P', b'8', b'L', 13, 0, 0, 0, 0x2f, 0, 0, 0,
    0x10, 0x07, 0x10, 0x11, 0x11, 0x88, 0x88, 0xfe, 0x07, 0,
];

struct Base {
    config: Vec<u8>,
    config_json: Value,
    safetensors: Vec<u8>,
    tokenizer: Vec<u8>,
    tokenizer_json: Value,
    preprocessor: Vec<u8>,
    preprocessor_json: Value,
    generation_json: Value,
    images: Vec<Vec<u8>>,
    image: RgbImage,
}

fn encode_png(img: image::DynamicImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn base_files() -> Base {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let read = |p: &str| std::fs::read(root.join(p)).unwrap_or_else(|e| panic!("cannot read {p}: {e}"));
    let cfg = Idefics3Config::from_json(FUZZ_CONFIG.as_bytes()).expect("the fuzz config is valid");
    let tokenizer = read("tests/fixtures/tokenizer/tokenizer.json");
    let photo = read("tests/fixtures/photo.png");
    let image = RgbImage::decode(&photo).unwrap();
    let rgb = image::RgbImage::from_raw(image.width as u32, image.height as u32, image.data.clone()).unwrap();
    let small = image::DynamicImage::ImageRgb8(rgb).resize_exact(24, 16, image::imageops::FilterType::Triangle);
    let mut jpeg = std::io::Cursor::new(Vec::new());
    small.write_to(&mut jpeg, image::ImageFormat::Jpeg).unwrap();
    let images = vec![
        encode_png(small.clone()),
        encode_png(image::DynamicImage::ImageLuma8(small.to_luma8())),
        encode_png(image::DynamicImage::ImageLumaA8(small.to_luma_alpha8())),
        encode_png(image::DynamicImage::ImageRgba8(small.to_rgba8())),
        encode_png(image::DynamicImage::ImageRgb16(small.to_rgb16())),
        jpeg.into_inner(),
        read("tests/e2e/exif-orientation-6.jpg"),
        read("tests/fixtures/photo_rgba.png"),
        GIF.to_vec(),
        WEBP.to_vec(),
    ];
    Base {
        config: FUZZ_CONFIG.as_bytes().to_vec(),
        config_json: serde_json::from_str(FUZZ_CONFIG).unwrap(),
        safetensors: random_checkpoint(&cfg, 1),
        tokenizer_json: serde_json::from_slice(&tokenizer).unwrap(),
        tokenizer,
        preprocessor: FUZZ_PREPROCESSOR.as_bytes().to_vec(),
        preprocessor_json: serde_json::from_str(FUZZ_PREPROCESSOR).unwrap(),
        generation_json: serde_json::from_str(FUZZ_GENERATION).unwrap(),
        images,
        image,
    }
}

// ---- what a case runs

/// Encode, rank with a random method and budget mode, and answer a few tokens: what the page does
/// with a model and an image it accepted.
fn exercise(rng: &mut Rng, vlm: &Vlm, img: &RgbImage, question: &str) -> zoo_prune_web::Result<()> {
    let grid = *rng.pick(&[1usize, 2, 3]);
    let processed = vlm.preprocess(img, Some(grid))?;
    let ids = vlm.prompt_ids(question, &processed)?;
    let layers = vlm.config.vision_config.num_hidden_layers;
    let method = Method::by_name(Method::NAMES[rng.below(Method::NAMES.len())], rng.0.next_u64() % 4)?;
    let att = if matches!(method, Method::VisionZip { .. }) && layers > 0 { vec![layers - 1] } else { vec![] };
    let encoded = vlm.encode(processed, 1 + rng.below(3), &att, |_, _| {});
    let q_ids = vlm.tokenizer.question_ids(question)?;
    let inputs = PruneInputs::new(&vlm.model, &encoded.tiles, vlm.config.image_token_id, &ids, &q_ids);
    let mode = if rng.chance(2) { BudgetMode::PerTile } else { BudgetMode::Global };
    let ranking = pollster::block_on(rank(&method, &inputs, mode))?;
    let features = encoded.features();
    let n = features.dims()[0];
    let k = budget(n, *rng.pick(&[1.0, 0.5, 0.1, 0.0]));
    let keep = ranking.keep(k);
    let mut gen = vlm.start_answer_pruned(&ids, features, &keep, ranking.deep_drop.as_ref(), Positions::Renumber, 3)?;
    let mut stream = TextStream::default();
    while let Some(tok) = pollster::block_on(gen.next_token(&vlm.model))? {
        stream.push(&vlm.tokenizer, tok)?;
    }
    Ok(())
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Target {
    Safetensors,
    Config,
    Preprocessor,
    Image,
    Tokenizer,
    Question,
}

const TARGETS: &[(&str, Target)] = &[
    ("safetensors", Target::Safetensors),
    ("config", Target::Config),
    ("preprocessor", Target::Preprocessor),
    ("image", Target::Image),
    ("tokenizer", Target::Tokenizer),
    ("question", Target::Question),
];

/// One case: Ok(true) when the mutated input was accepted, Ok(false) when it was refused with an
/// error (the expected outcome for most mutations). The input is kept in `input` for the report.
fn run_case(t: Target, rng: &mut Rng, base: &Base, exercise_every: usize, input: &mut Vec<u8>) -> bool {
    let device = burn::tensor::Device::flex();
    let files = |config: Vec<u8>, safetensors: Vec<u8>, generation: Option<Vec<u8>>| ModelFiles {
        config,
        safetensors,
        tokenizer: base.tokenizer.clone(),
        preprocessor: Some(base.preprocessor.clone()),
        generation: generation.or_else(|| Some(FUZZ_GENERATION.as_bytes().to_vec())),
    };
    let q = "What colour is the cat?";
    match t {
        Target::Safetensors => {
            *input = mutate_safetensors(rng, &base.safetensors);
            let whole = Vlm::load(&files(base.config.clone(), input.clone(), None), &device);
            // the browser's way: the same file read through byte ranges must be accepted or
            // refused alike (a panic in either is the harness's finding)
            let bytes = input.clone();
            let n = bytes.get(..8).map(|b| u64::from_le_bytes(b.try_into().unwrap()) as usize).unwrap_or(0);
            let head = bytes[..bytes.len().min(8usize.saturating_add(n.min(100_000_000)))].to_vec();
            let reader = |o: usize, l: usize| Ok(bytes.get(o..o.saturating_add(l)).map(|b| b.to_vec()).unwrap_or_default());
            let streamed = Vlm::load_weights(
                &files(base.config.clone(), Vec::new(), None),
                || zoo_prune_web::weights::WeightMap::from_reader(&head, bytes.len(), Box::new(reader)),
                &device,
                &Default::default(),
            );
            assert_eq!(
                whole.is_ok(),
                streamed.is_ok(),
                "the whole file and a reader disagree: {:?} vs {:?}",
                whole.as_ref().err().map(|e| e.to_string()),
                streamed.as_ref().err().map(|e| e.to_string())
            );
            let Ok(vlm) = whole else { return false };
            if rng.chance(exercise_every) {
                let _ = exercise(rng, &vlm, &base.image, q);
            }
            true
        }
        Target::Config => {
            let (config, generation) = if rng.chance(8) {
                (base.config.clone(), Some(mutated_json_bytes(rng, &base.generation_json)))
            } else {
                (mutated_json_bytes(rng, &base.config_json), None)
            };
            *input = config.clone();
            if let Some(g) = &generation {
                input.extend_from_slice(b"\n---- generation_config.json\n");
                input.extend_from_slice(g);
            }
            let Ok(vlm) = Vlm::load(&files(config, base.safetensors.clone(), generation), &device) else { return false };
            let _ = exercise(rng, &vlm, &base.image, q);
            true
        }
        Target::Preprocessor => {
            *input = mutated_json_bytes(rng, &base.preprocessor_json);
            let Ok(cfg) = ProcessorConfig::from_json(input, 32) else { return false };
            let (w, h) = (1 + rng.below(300), 1 + rng.below(300));
            let img = base.image.resize(w, h, zoo_prune_web::preprocess::Filter::Bilinear);
            let cfg = if rng.chance(2) { cfg.with_max_grid(rng.below(6)) } else { cfg };
            let Ok(p) = ProcessedImage::new(&img, &cfg) else { return false };
            let _ = p.token_rects(8, 2);
            true
        }
        Target::Image => {
            let mut b = rng.pick(&base.images).clone();
            if b.starts_with(b"\x89PNG") {
                mutate_png(rng, &mut b);
            } else {
                mutate_bytes(rng, &mut b);
            }
            *input = b;
            let Ok(img) = RgbImage::decode(input) else { return false };
            let cfg = ProcessorConfig::from_json(&base.preprocessor, 32).unwrap().with_max_grid(1 + rng.below(4));
            let Ok(p) = ProcessedImage::new(&img, &cfg) else { return false };
            let _ = p.token_rects(8, 2);
            if rng.chance(exercise_every) {
                if let Ok(vlm) = Vlm::load(&files(base.config.clone(), base.safetensors.clone(), None), &device) {
                    let _ = exercise(rng, &vlm, &img, q);
                }
            }
            true
        }
        Target::Tokenizer => {
            *input = mutated_json_bytes(rng, &base.tokenizer_json);
            let Ok(tok) = PromptTokenizer::from_bytes(input, 4, &[2]) else { return false };
            let question = random_question(rng);
            let _ = tok.prompt_ids(&question, rng.below(3), rng.below(3), 1 + rng.below(8));
            let ids: Vec<u32> = (0..rng.below(12)).map(|_| rng.below(400) as u32).collect();
            let _ = tok.decode(&ids);
            let mut stream = TextStream::default();
            for &id in &ids {
                let _ = stream.push(&tok, id);
            }
            true
        }
        Target::Question => {
            let question = random_question(rng);
            *input = question.clone().into_bytes();
            thread_local!(static VLM: RefCell<Option<Vlm>> = const { RefCell::new(None) });
            VLM.with(|v| {
                let mut v = v.borrow_mut();
                let vlm = v.get_or_insert_with(|| {
                    Vlm::load(&files(base.config.clone(), base.safetensors.clone(), None), &device).unwrap()
                });
                let ok = vlm.tokenizer.question_ids(&question).is_ok();
                if rng.chance(exercise_every) {
                    let _ = exercise(rng, vlm, &base.image, &question);
                } else {
                    let _ = vlm.tokenizer.prompt_ids(&question, 1, 2, 4);
                }
                ok
            })
        }
    }
}

thread_local!(static PANIC: RefCell<Option<String>> = const { RefCell::new(None) });

struct Args {
    targets: Vec<Target>,
    cases: u64,
    first_case: u64,
    seconds: f64,
    seed: u64,
    exercise_every: usize,
    max_alloc: usize,
    out: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        targets: TARGETS.iter().map(|t| t.1).collect(),
        cases: 10_000,
        first_case: 0,
        seconds: f64::INFINITY,
        seed: 1,
        exercise_every: 16,
        max_alloc: 256 << 20,
        out: PathBuf::from("target/fuzz-findings"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().ok_or(format!("{k} needs a value"));
        let num = |s: String| s.parse::<u64>().map_err(|_| format!("{k}: not a number: {s}"));
        match k.as_str() {
            "--target" => {
                let v = v()?;
                a.targets = v
                    .split(',')
                    .map(|n| TARGETS.iter().find(|t| t.0 == n).map(|t| t.1).ok_or(format!("unknown target {n}")))
                    .collect::<Result<_, _>>()?;
            }
            "--cases" => a.cases = num(v()?)?,
            "--first-case" => a.first_case = num(v()?)?,
            "--seconds" => a.seconds = v()?.parse().map_err(|_| "--seconds: not a number".to_string())?,
            "--seed" => a.seed = num(v()?)?,
            "--exercise-every" => a.exercise_every = num(v()?)?.max(1) as usize,
            "--max-alloc-mib" => a.max_alloc = (num(v()?)? as usize) << 20,
            "--out" => a.out = PathBuf::from(v()?),
            "-h" | "--help" => {
                return Err(format!(
                    "usage: fuzz [--target {}] [--cases N] [--first-case I] [--seconds S] [--seed S] \
                     [--exercise-every N] [--max-alloc-mib M] [--out DIR]",
                    TARGETS.iter().map(|t| t.0).collect::<Vec<_>>().join(",")
                ))
            }
            other => return Err(format!("unknown argument {other} (see --help)")),
        }
    }
    Ok(a)
}

fn main() {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        let bt = if std::env::var_os("FUZZ_BACKTRACE").is_some() {
            format!("\n{}", std::backtrace::Backtrace::force_capture())
        } else {
            String::new()
        };
        PANIC.with(|p| *p.borrow_mut() = Some(format!("{at}: {msg}{bt}")));
    }));
    let base = base_files();
    println!(
        "fuzz: seed {}, up to {} cases and {} s per target, exercise 1 in {}, allocations over {} MiB are findings",
        a.seed, a.cases, a.seconds, a.exercise_every, a.max_alloc >> 20
    );
    println!("{:<13} {:>9} {:>9} {:>9} {:>7} {:>10} {:>12} {:>11} {:>8}", "target", "cases", "accepted", "refused",
        "panics", "big-alloc", "largest MiB", "slowest ms", "cases/s");
    let mut findings = 0;
    for &t in &a.targets {
        let name = TARGETS.iter().find(|x| x.1 == t).unwrap().0;
        let tag = name.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
        let (mut cases, mut accepted, mut panics, mut big, mut largest, mut slowest) = (0u64, 0u64, 0u64, 0u64, 0usize, 0f64);
        let mut seen: Vec<String> = Vec::new();
        let t0 = Instant::now();
        for i in a.first_case..a.first_case + a.cases {
            if t0.elapsed().as_secs_f64() > a.seconds {
                break;
            }
            let mut rng = Rng(SplitMix64::new(a.seed ^ tag.rotate_left(17) ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15)));
            let mut input = Vec::new();
            LARGEST.store(0, Ordering::Relaxed);
            let tc = Instant::now();
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_case(t, &mut rng, &base, a.exercise_every, &mut input)
            }));
            slowest = slowest.max(tc.elapsed().as_secs_f64() * 1e3);
            let peak = LARGEST.load(Ordering::Relaxed);
            largest = largest.max(peak);
            cases += 1;
            let finding = match r {
                Ok(ok) => {
                    accepted += ok as u64;
                    if peak > a.max_alloc {
                        big += 1;
                        Some(format!("allocation of {} MiB", peak >> 20))
                    } else {
                        None
                    }
                }
                Err(_) => {
                    panics += 1;
                    Some(format!("panic at {}", PANIC.with(|p| p.borrow_mut().take()).unwrap_or_default()))
                }
            };
            if let Some(what) = finding {
                let _ = std::fs::create_dir_all(&a.out);
                let file = a.out.join(format!("{name}-{i}.bin"));
                let _ = std::fs::write(&file, &input);
                // one line per distinct place (the first few words of the message)
                let key: String = what.chars().take(120).collect();
                if !seen.contains(&key) {
                    seen.push(key);
                    println!("  {name} case {i}: {what} (input: {}; rerun: --target {name} --seed {} --first-case {i} --cases 1)",
                        file.display(), a.seed);
                }
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        findings += panics + big;
        println!("{name:<13} {cases:>9} {accepted:>9} {:>9} {panics:>7} {big:>10} {:>12.1} {slowest:>11.1} {:>8.0}",
            cases - accepted - panics, largest as f64 / (1 << 20) as f64, cases as f64 / secs.max(1e-9));
    }
    if findings > 0 {
        println!("FOUND {findings} case(s): panics or oversized allocations");
        std::process::exit(1);
    }
    println!("no panics, no oversized allocations");
}
