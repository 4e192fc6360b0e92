//! Bad inputs give clear errors that name the problem, never a panic: truncated or foreign files,
//! missing / unexpected / mis-shaped tensors, broken images, empty prompts, bad configs.

use crate::common;

use common::*;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use zoo_prune_web::preprocess::RgbImage;
use zoo_prune_web::weights::WeightMap;
use zoo_prune_web::{Error, ModelFiles, Vlm};

fn files() -> ModelFiles {
    ModelFiles::from_dir(&fixtures().join("tiny_single")).unwrap()
}

/// Rewrites the checkpoint: `edit` gets (name, dtype, shape, bytes) and returns the new list.
fn rewrite(
    bytes: &[u8],
    edit: impl FnOnce(Vec<(String, Dtype, Vec<usize>, Vec<u8>)>) -> Vec<(String, Dtype, Vec<usize>, Vec<u8>)>,
) -> Vec<u8> {
    let st = SafeTensors::deserialize(bytes).unwrap();
    let list = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.dtype(), v.shape().to_vec(), v.data().to_vec()))
        .collect();
    let list = edit(list);
    let views: Vec<(String, TensorView)> = list
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize(views, None).unwrap()
}

fn load_err(f: &ModelFiles) -> String {
    match Vlm::load(f, &device("flex")) {
        Ok(_) => panic!("loading should have failed"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn truncated_checkpoint_is_reported() {
    let mut f = files();
    f.safetensors.truncate(f.safetensors.len() / 2);
    let e = load_err(&f);
    assert!(e.contains("truncated"), "{e}");
}

#[test]
fn tensor_whose_dtype_does_not_fit_its_bytes_is_named() {
    // The header says BF16 for a tensor stored as F32: its byte range is twice what BF16 needs.
    let mut f = files();
    let b = f.safetensors.clone();
    let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&b[8..8 + n]).unwrap();
    let name = "model.text_model.norm.weight";
    assert_eq!(header[name]["dtype"], "F32");
    header[name]["dtype"] = "BF16".into();
    let mut h = serde_json::to_vec(&header).unwrap();
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    f.safetensors = (h.len() as u64).to_le_bytes().to_vec();
    f.safetensors.extend(&h);
    f.safetensors.extend(&b[8 + n..]);
    let e = load_err(&f);
    assert!(e.contains(&format!("`{name}` is BF16 of shape [64], which is 128 bytes")), "{e}");
    assert!(e.contains("gives it 256 bytes"), "{e}");
}

#[test]
fn foreign_file_is_reported() {
    let mut f = files();
    f.safetensors = b"<html>404 not found</html>".to_vec();
    let e = load_err(&f);
    assert!(e.starts_with("checkpoint:") && e.contains("safetensors"), "{e}");
    f.safetensors = vec![];
    let e = load_err(&f);
    assert!(e.starts_with("checkpoint:"), "{e}");
}

#[test]
fn missing_tensor_is_named() {
    let mut f = files();
    f.safetensors = rewrite(&f.safetensors, |l| {
        l.into_iter().filter(|t| t.0 != "model.text_model.layers.1.mlp.up_proj.weight").collect()
    });
    let e = load_err(&f);
    assert!(e.contains("missing tensor `model.text_model.layers.1.mlp.up_proj.weight`"), "{e}");
}

#[test]
fn every_missing_or_misshaped_tensor_is_named_at_once() {
    // e.g. SmolVLM-500M's weights with the 256M's config.json: many tensors wrong, all named
    let mut f = files();
    let conn = "model.connector.modality_projection.proj.weight";
    f.safetensors = rewrite(&f.safetensors, |l| {
        l.into_iter()
            .filter(|t| !t.0.starts_with("model.text_model.layers.1.mlp."))
            .map(|(n, d, s, b)| if n == conn { (n, d, vec![s[1], s[0]], b) } else { (n, d, s, b) })
            .collect()
    });
    let e = load_err(&f);
    // first in reading order (the connector comes before the text model), then the rest
    assert!(e.starts_with(&format!("checkpoint: tensor `{conn}` has shape")), "{e}");
    assert!(e.contains("and 3 more problem(s)"), "{e}");
    for p in ["gate_proj", "up_proj", "down_proj"] {
        assert!(e.contains(&format!("missing tensor `model.text_model.layers.1.mlp.{p}.weight`")), "{e}");
    }
}

#[test]
fn unexpected_tensor_is_named() {
    let mut f = files();
    f.safetensors = rewrite(&f.safetensors, |mut l| {
        l.push(("model.extra_head.weight".into(), Dtype::F32, vec![2], vec![0; 8]));
        l
    });
    let e = load_err(&f);
    assert!(e.contains("`model.extra_head.weight`") && e.contains("unexpected"), "{e}");
}

#[test]
fn wrong_shape_is_named() {
    let mut f = files();
    let name = "model.connector.modality_projection.proj.weight";
    f.safetensors = rewrite(&f.safetensors, |l| {
        l.into_iter()
            .map(|(n, d, s, b)| if n == name { (n, d, vec![s[1], s[0]], b) } else { (n, d, s, b) })
            .collect()
    });
    let e = load_err(&f);
    assert!(e.contains(name) && e.contains("shape"), "{e}");
}

#[test]
fn unsupported_dtype_is_named() {
    let mut f = files();
    let name = "model.text_model.norm.weight";
    f.safetensors = rewrite(&f.safetensors, |l| {
        l.into_iter()
            .map(|(n, d, s, b)| if n == name { (n, Dtype::I32, s, b) } else { (n, d, s, b) })
            .collect()
    });
    let e = load_err(&f);
    assert!(e.contains(name) && e.contains("I32"), "{e}");
}

fn to_bf16(b: &[u8]) -> Vec<u8> {
    b.chunks_exact(4)
        .flat_map(|c| {
            let bits = f32::from_le_bytes([c[0], c[1], c[2], c[3]]).to_bits();
            // round to nearest even, as torch does
            let r = ((bits + 0x7fff + ((bits >> 16) & 1)) >> 16) as u16;
            r.to_le_bytes()
        })
        .collect()
}

#[test]
fn bf16_and_f16_checkpoints_load_as_f32() {
    let f = files();
    let bf = rewrite(&f.safetensors, |l| {
        l.into_iter().map(|(n, _, s, b)| (n, Dtype::BF16, s, to_bf16(&b))).collect()
    });
    let f16 = rewrite(&f.safetensors, |l| {
        l.into_iter()
            .map(|(n, _, s, b)| {
                let h: Vec<u8> = b
                    .chunks_exact(4)
                    .flat_map(|c| half::f16::from_f32(f32::from_le_bytes([c[0], c[1], c[2], c[3]])).to_le_bytes())
                    .collect();
                (n, Dtype::F16, s, h)
            })
            .collect()
    });
    let name = "model.text_model.embed_tokens.weight";
    let orig = WeightMap::new(&f.safetensors).unwrap();
    let shape = SafeTensors::deserialize(&f.safetensors).unwrap().tensor(name).unwrap().shape().to_vec();
    let want = orig.f32_values(name, &shape).unwrap();
    let got_bf = WeightMap::new(&bf).unwrap().f32_values(name, &shape).unwrap();
    let got_h = WeightMap::new(&f16).unwrap().f32_values(name, &shape).unwrap();
    for ((w, b), h) in want.iter().zip(&got_bf).zip(&got_h) {
        assert!((w - b).abs() <= w.abs() / 128.0 + 1e-30, "bf16 {w} -> {b}");
        assert!((w - h).abs() <= w.abs() / 1024.0 + 1e-4, "f16 {w} -> {h}");
        assert_eq!(half::bf16::from_f32(*w).to_f32(), *b);
    }
    // The whole model from each: its logits equal, to the bit, those of an f32 checkpoint holding
    // the same rounded values (made here with the `half` crate, not our loader: bf16/f16 -> f32 is
    // exact, so any tensor read wrongly, swapped or left out shows), and stay within the
    // rounding's reach of the original f32 model's (bf16 keeps 8 bits of mantissa: relative error
    // <= 2^-8 per weight; measured on this random model: 0.041 for bf16, 0.0058 for f16, largest
    // logit 4.35; bound 0.1 x the largest).
    let rounded = |to: fn(f32) -> f32| {
        rewrite(&f.safetensors, |l| {
            l.into_iter()
                .map(|(n, d, s, b)| {
                    let r: Vec<u8> = b
                        .chunks_exact(4)
                        .flat_map(|c| to(f32::from_le_bytes([c[0], c[1], c[2], c[3]])).to_le_bytes())
                        .collect();
                    (n, d, s, r)
                })
                .collect()
        })
    };
    let logits = |safetensors: Vec<u8>| -> Vec<f32> {
        let mut m = files();
        m.safetensors = safetensors;
        let vlm = Vlm::load(&m, &device("flex")).unwrap();
        let img = vlm.preprocess(&zoo_prune_web::preprocess::RgbImage::decode(&std::fs::read(fixtures().join("photo.png")).unwrap()).unwrap(), None).unwrap();
        let ids = vlm.prompt_ids("What colour is the cat?", &img).unwrap();
        let enc = pollster::block_on(vlm.encode(img, &[])).unwrap();
        let embeds = vlm.model.merge_embeds(&ids, vlm.config.image_token_id, Some(enc.features())).unwrap();
        let mut cache = vlm.model.text.new_cache();
        let out = vlm.model.text.forward(embeds, &mut cache, &zoo_prune_web::model::ForwardOptions::default());
        pollster::block_on(zoo_prune_web::readback::read_floats(vlm.model.text.logits(out.hidden))).unwrap()
    };
    let full = logits(f.safetensors.clone());
    let scale = full.iter().fold(0f32, |a, v| a.max(v.abs()));
    for (what, low, same_values) in [
        ("bf16", bf, rounded(|w| half::bf16::from_f32(w).to_f32())),
        ("f16", f16, rounded(|w| half::f16::from_f32(w).to_f32())),
    ] {
        let got = logits(low);
        let want = logits(same_values);
        assert_eq!(got.len(), full.len());
        let differ = got.iter().zip(&want).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
        assert_eq!(differ, 0, "{what}: {differ} logits differ from the f32 checkpoint of the same values");
        let d = max_abs_diff(&got, &full);
        eprintln!("{what}: max |logit - f32 logit| = {d} (largest logit {scale})");
        assert!(d > 0.0 && d <= 0.1 * scale, "{what}: logits {d} from the f32 model's (largest {scale})");
    }
}

#[test]
fn bad_config_and_tokenizer_are_reported() {
    let mut f = files();
    f.config = b"{not json".to_vec();
    assert!(load_err(&f).starts_with("config:"));
    let mut f = files();
    f.tokenizer = b"{}".to_vec();
    assert!(load_err(&f).starts_with("tokenizer:"));
    // config of the other model: the shapes disagree and the error names a tensor
    let mut f = files();
    f.config = std::fs::read(fixtures().join("tiny_tiles/config.json")).unwrap();
    let e = load_err(&f);
    assert!(e.contains("differs from the vision image_size"), "{e}");
    f.preprocessor = None;
    let e = load_err(&f);
    assert!(e.contains("tensor `model."), "{e}");
}

#[test]
fn broken_images_are_reported() {
    let png = std::fs::read(fixtures().join("photo.png")).unwrap();
    // each message names its cause
    for (bad, cause) in [
        (png[..png.len() / 3].to_vec(), "the image is broken or truncated"),
        (b"GIF89a garbage".to_vec(), "GIF images are not supported: convert it to PNG or JPEG"),
        (vec![1, 2, 3, 4, 5], "not an image file this page can read (use PNG or JPEG)"),
        (vec![], "not an image file this page can read"),
    ] {
        match RgbImage::decode(&bad) {
            Err(Error::Image(m)) => assert!(m.starts_with(cause), "{} bytes: {m:?} does not say {cause:?}", bad.len()),
            other => panic!("expected an image error, got {:?}", other.map(|i| (i.width, i.height))),
        }
    }
}

#[test]
fn empty_question_is_reported() {
    let vlm = load_vlm("tiny_single", "flex");
    let img = RgbImage::decode(&std::fs::read(fixtures().join("photo.png")).unwrap()).unwrap();
    let p = vlm.preprocess(&img, None).unwrap();
    match vlm.prompt_ids("   ", &p) {
        Err(Error::Prompt(m)) => assert!(m.contains("empty")),
        other => panic!("expected a prompt error, got {other:?}"),
    }
}

#[test]
fn random_checkpoints_have_the_hf_names_and_shapes() {
    use zoo_prune_web::model::tensors::checkpoint_tensors;
    use zoo_prune_web::random_weights::random_checkpoint;
    for m in ["tiny_single", "tiny_tiles"] {
        let f = ModelFiles::from_dir(&fixtures().join(m)).unwrap();
        let cfg = zoo_prune_web::Idefics3Config::from_json(&f.config).unwrap();
        let hf = SafeTensors::deserialize(&f.safetensors).unwrap();
        let mut want: Vec<(String, Vec<usize>)> =
            hf.tensors().into_iter().map(|(n, v)| (n, v.shape().to_vec())).collect();
        want.sort();
        let mut got = checkpoint_tensors(&cfg);
        got.sort();
        assert_eq!(got, want, "{m}: our list of tensors differs from transformers' save_pretrained");
        let mut r = ModelFiles::from_dir(&fixtures().join(m)).unwrap();
        r.safetensors = random_checkpoint(&cfg, 1);
        Vlm::load(&r, &device("flex")).unwrap();
        // marked random (the page says so), and read from the file's beginning alone
        let head = 8 + u64::from_le_bytes(r.safetensors[..8].try_into().unwrap()) as usize;
        let meta = zoo_prune_web::weights::file_metadata(&r.safetensors[..head]);
        assert_eq!(meta.get("weights").map(String::as_str), Some("random"), "{m}: {meta:?}");
        // transformers' own file says only its format
        let hf_meta = zoo_prune_web::weights::file_metadata(&f.safetensors);
        assert_eq!(hf_meta.get("format").map(String::as_str), Some("pt"));
        assert!(!hf_meta.contains_key("weights"));
    }
}

#[test]
fn grids_whose_hf_position_ids_are_not_0_to_n_are_refused() {
    let f = files();
    let mut cfg: serde_json::Value = serde_json::from_slice(&f.config).unwrap();
    cfg["vision_config"]["image_size"] = serde_json::json!(27 * 8);
    cfg["scale_factor"] = serde_json::json!(3);
    let e = zoo_prune_web::Idefics3Config::from_json(cfg.to_string().as_bytes()).unwrap_err().to_string();
    assert!(e.contains("27 patches per side"), "{e}");
    cfg["vision_config"]["image_size"] = serde_json::json!(32 * 8);
    cfg["scale_factor"] = serde_json::json!(2);
    zoo_prune_web::Idefics3Config::from_json(cfg.to_string().as_bytes()).unwrap();
}

#[test]
fn image_messages_name_the_cause() {
    // a PNG whose header says 40000 x 40000 (1600 megapixels): refused from the header, by size
    let mut png = std::fs::read(fixtures().join("photo.png")).unwrap();
    assert_eq!(&png[12..16], b"IHDR");
    png[16..20].copy_from_slice(&40000u32.to_be_bytes());
    png[20..24].copy_from_slice(&40000u32.to_be_bytes());
    // PNG chunks carry a CRC-32: a changed IHDR needs a new one or the decoder stops there
    let crc = crc32fast::hash(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    let e = RgbImage::decode(&png).unwrap_err().to_string();
    assert!(e.contains("too large (40000x40000)") && e.contains("64 megapixels"), "{e}");
    // formats this build does not decode are named, with what to do (not "broken or truncated")
    let gif = [b"GIF89a".as_slice(), &[1, 0, 1, 0, 0x80, 0, 0, 255, 255, 255, 0, 0, 0, 0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 1, 0, 0x3b]].concat();
    let e = RgbImage::decode(&gif).unwrap_err().to_string();
    assert!(e.contains("GIF images are not supported: convert it to PNG or JPEG"), "{e}");
    let webp = [b"RIFF\x1a\0\0\0WEBPVP8L".as_slice(), &[13, 0, 0, 0, 0x2f, 0, 0, 0, 0x10, 7, 0x10, 0x11, 0x11, 0x88, 0x88, 0xfe, 7, 0]].concat();
    let e = RgbImage::decode(&webp).unwrap_err().to_string();
    assert!(e.contains("WEBP images are not supported"), "{e}");
    // a truncated PNG is still called what it is
    let png = std::fs::read(fixtures().join("photo.png")).unwrap();
    let e = RgbImage::decode(&png[..png.len() / 2]).unwrap_err().to_string();
    assert!(e.contains("broken or truncated"), "{e}");
}

// Regression tests for what `cargo run --release --bin fuzz` found (2026-11-29): each was a panic
// (a division by zero, a capacity overflow, a panic inside the tokenizers crate) or an allocation
// of 25 GB; each is now an error that says what is wrong.

fn config_error(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut cfg: serde_json::Value = serde_json::from_slice(&files().config).unwrap();
    edit(&mut cfg);
    let mut f = files();
    f.config = cfg.to_string().into_bytes();
    load_err(&f)
}

#[test]
fn fuzz_found_config_values_are_refused() {
    let e = config_error(|c| c["text_config"]["num_attention_heads"] = serde_json::json!(0));
    assert!(e.contains("text_config.num_attention_heads is 0"), "{e}");
    let e = config_error(|c| c["vision_config"]["num_hidden_layers"] = serde_json::json!(u64::MAX));
    assert!(e.contains("vision_config.num_hidden_layers is 18446744073709551615"), "{e}");
    let e = config_error(|c| c["vision_config"]["layer_norm_eps"] = serde_json::json!(-1e308));
    assert!(e.contains("vision_config.layer_norm_eps is -1e308;"), "{e}");
    let e = config_error(|c| c["vision_config"]["num_channels"] = serde_json::json!(4));
    assert!(e.contains("num_channels is 4; it must be between 3 and 3"), "{e}");
    let e = config_error(|c| c["text_config"]["head_dim"] = serde_json::json!(0));
    assert!(e.contains("head_dim is 0"), "{e}");
    let e = config_error(|c| c["text_config"]["rope_parameters"]["rope_theta"] = serde_json::json!(-5.0));
    assert!(e.contains("rope_theta is -5"), "{e}");
}

#[test]
fn fuzz_found_tokenizer_syntax_error_is_an_error() {
    // the tokenizers crate panicked (`expect("Helper")`) on a syntax error inside "decoder"
    let mut f = files();
    let text = String::from_utf8(f.tokenizer.clone()).unwrap();
    let at = text.find("\"decoder\"").unwrap();
    let colon = at + text[at..].find(':').unwrap();
    f.tokenizer = format!("{}: {{\"type\": \"ByteLevel\", \"add_prefix_space\": ,{}", &text[..colon], &text[colon + 1..]).into_bytes();
    let e = load_err(&f);
    assert!(e.contains("tokenizer.json is not valid JSON"), "{e}");
}

#[test]
fn fuzz_found_tokenizer_panics_are_errors() {
    let text = String::from_utf8(files().tokenizer).unwrap();
    let with = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        edit(&mut v);
        let mut f = files();
        f.tokenizer = v.to_string().into_bytes();
        f
    };
    // a continuing_subword_prefix longer than a merge's second token: tokenizers sliced past its end
    let e = load_err(&with(&|v| v["model"]["continuing_subword_prefix"] = serde_json::json!(" <image>\u{fffd}é")));
    assert!(e.contains("does not start with the model's continuing_subword_prefix"), "{e}");
    // invalid UTF-8 inside the decoder's "type" string: skipped unchecked by a syntax-only check,
    // then tokenizers' `expect("Helper")` panicked on it
    let mut f = files();
    let d = text.find("\"decoder\"").unwrap();
    let at = d + text[d..].find("\"ByteLevel\"").unwrap() + 4;
    let mut bytes = text.into_bytes();
    bytes[at] = 0xff;
    f.tokenizer = bytes;
    let e = load_err(&f);
    assert!(e.contains("tokenizer.json is not valid JSON"), "{e}");
}

#[test]
fn fuzz_found_prompt_longer_than_the_model_reads_is_refused() {
    // a question of ~100 000 tokens asked for a 25 GB attention matrix; the prompt is now held to
    // max_position_embeddings (2048 in the tiny config)
    let vlm = load_vlm("tiny_single", "flex");
    let img = RgbImage::decode(&std::fs::read(fixtures().join("photo.png")).unwrap()).unwrap();
    let p = vlm.preprocess(&img, None).unwrap();
    let max = vlm.config.text_config.max_position_embeddings;
    let ok = vlm.prompt_ids("What colour is the cat?", &p).unwrap();
    let reps = (max - ok.len()) / 8;
    let fits = vlm.prompt_ids(&"cat ".repeat(reps), &p).unwrap();
    assert!(fits.len() > ok.len() + reps / 2, "{} tokens", fits.len());
    match vlm.prompt_ids(&"cat ".repeat(3 * max), &p) {
        Err(Error::Prompt(m)) => assert!(m.contains(&format!("more than the {max} this model reads")), "{m}"),
        other => panic!("expected a prompt error, got {other:?}"),
    }
}

#[test]
fn the_tensor_table_follows_the_configs_bias_flags() {
    // Llama configs may ask for attention / MLP biases: the table (and so random checkpoints and
    // the loader's up-front check) must list them, else such a checkpoint could not load
    use zoo_prune_web::model::tensors::checkpoint_tensors;
    use zoo_prune_web::random_weights::random_checkpoint;
    let mut f = ModelFiles::from_dir(&fixtures().join("tiny_tiles")).unwrap();
    let mut cfg: serde_json::Value = serde_json::from_slice(&f.config).unwrap();
    cfg["text_config"]["attention_bias"] = true.into();
    cfg["text_config"]["mlp_bias"] = true.into();
    f.config = serde_json::to_vec(&cfg).unwrap();
    let c = zoo_prune_web::Idefics3Config::from_json(&f.config).unwrap();
    let names: Vec<String> = checkpoint_tensors(&c).into_iter().map(|(n, _)| n).collect();
    for n in ["self_attn.q_proj.bias", "self_attn.o_proj.bias", "mlp.down_proj.bias"] {
        assert!(names.contains(&format!("model.text_model.layers.0.{n}")), "{n} missing from the table");
    }
    f.safetensors = random_checkpoint(&c, 2);
    Vlm::load(&f, &device("flex")).unwrap();
}

/// The browser's way to read weights: the file stays outside the wasm memory and the loader asks
/// for byte ranges (`WeightMap::from_reader`). Returns the reader's largest read and its total.
fn read_through_reader(bytes: &[u8], file_len: usize, f: &ModelFiles) -> (Result<Vlm, Error>, usize, usize) {
    use std::cell::Cell;
    let (largest, total) = (Cell::new(0usize), Cell::new(0usize));
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let reader = |o: usize, l: usize| {
        largest.set(largest.get().max(l));
        total.set(total.get() + l);
        Ok(bytes.get(o..o + l).map(|b| b.to_vec()).unwrap_or_default())
    };
    let head = &bytes[..(8 + n).min(bytes.len())];
    let r = Vlm::load_weights(f, || WeightMap::from_reader(head, file_len, Box::new(reader)), &device("flex"), &Default::default());
    (r, largest.get(), total.get())
}

#[test]
fn weights_read_through_a_reader_make_the_same_model() {
    use burn::tensor::{Tensor, TensorData};
    let f = files();
    let plain = Vlm::load(&f, &device("flex")).unwrap();
    let (streamed, _, total) = read_through_reader(&f.safetensors, f.safetensors.len(), &f);
    let streamed = streamed.unwrap();
    let n = u64::from_le_bytes(f.safetensors[..8].try_into().unwrap()) as usize;
    assert_eq!(total, f.safetensors.len() - 8 - n, "every tensor's bytes read once");
    // the same bytes converted the same way: identical outputs
    let ids = [1u32, 5, 77, 200, 359];
    let logits = |v: &Vlm| read_floats(v.model.text.logits(v.model.text.embed(&ids)));
    assert_eq!(logits(&plain), logits(&streamed));
    let tile = plain.config.vision_config.image_size;
    let px: Vec<f32> = (0..3 * tile * tile).map(|i| ((i * 37 % 255) as f32 / 127.5) - 1.0).collect();
    let features = |v: &Vlm| {
        let t = Tensor::<4>::from_data(TensorData::new(px.clone(), [1, 3, tile, tile]), &device("flex"));
        read_floats(v.model.encode(t, &[]).features)
    };
    assert_eq!(features(&plain), features(&streamed));
}

#[test]
fn a_large_tensor_is_read_in_pieces_of_at_most_4_mib() {
    use std::cell::Cell;
    let values: Vec<u8> = (0..3_000_000u32).flat_map(|i| (i as f32 * 0.5).to_le_bytes()).collect(); // 12 MB of f32
    let bytes = safetensors::serialize([("big", TensorView::new(Dtype::F32, vec![1000, 3000], &values).unwrap())], None).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let reads = Cell::new(Vec::new());
    let reader = |o: usize, l: usize| {
        let mut r = reads.take();
        r.push(l);
        reads.set(r);
        Ok(bytes[o..o + l].to_vec())
    };
    let w = WeightMap::from_reader(&bytes[..8 + n], bytes.len(), Box::new(reader)).unwrap();
    let got = w.f32_values("big", &[1000, 3000]).unwrap();
    assert_eq!(got, WeightMap::new(&bytes).unwrap().f32_values("big", &[1000, 3000]).unwrap());
    let reads = reads.take();
    assert_eq!((reads.len(), reads.iter().sum::<usize>()), (3, 12_000_000), "{reads:?}");
    assert!(reads.iter().all(|&l| l <= 4 << 20), "{reads:?}");
}

#[test]
fn a_reader_sees_the_same_damage_as_the_whole_file() {
    let f = files();
    // cut short: the header announces more than the file holds
    let (r, _, _) = read_through_reader(&f.safetensors, f.safetensors.len() / 2, &f);
    let e = r.err().expect("truncated").to_string();
    assert!(e.contains("the file is truncated"), "{e}");
    // a tensor whose dtype does not fit its bytes is named
    let b = f.safetensors.clone();
    let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&b[8..8 + n]).unwrap();
    header["model.text_model.norm.weight"]["dtype"] = "BF16".into();
    let h = serde_json::to_vec(&header).unwrap();
    let mut damaged = (h.len() as u64).to_le_bytes().to_vec();
    damaged.extend_from_slice(&h);
    damaged.extend_from_slice(&b[8 + n..]);
    let (r, _, _) = read_through_reader(&damaged, damaged.len(), &f);
    let e = r.err().expect("damaged").to_string();
    assert!(e.contains("tensor `model.text_model.norm.weight` is BF16"), "{e}");
    // not a safetensors file at all
    let (r, _, _) = read_through_reader(b"{\"not\": \"weights\"}", 18, &f);
    let e = r.err().expect("foreign").to_string();
    assert!(e.starts_with("checkpoint: "), "{e}");
}

fn read_floats<const D: usize>(t: burn::tensor::Tensor<D>) -> Vec<f32> {
    pollster::block_on(zoo_prune_web::readback::read_floats(t)).unwrap()
}

#[test]
fn a_file_of_another_layout_is_told_before_its_missing_tensors() {
    // e.g. a text model's or an older export's names without the `model.` prefix: one sentence
    // saying what the file is, not 72 missing tensors
    let mut f = files();
    f.safetensors = rewrite(&f.safetensors, |l| {
        l.into_iter().map(|(n, d, s, b)| (n.trim_start_matches("model.").to_string(), d, s, b)).collect()
    });
    let e = load_err(&f);
    assert!(e.contains("does not look like an Idefics3/SmolVLM checkpoint"), "{e}");
    assert!(e.contains("none of the 58 tensors"), "{e}");
    assert!(e.contains("its first tensors: connector.modality_projection.proj.weight"), "{e}");
}

#[test]
fn a_tied_checkpoint_that_also_holds_lm_head_loads_it() {
    // transformers may save lm_head.weight even when the embeddings are tied: the file loads,
    // and the head is the file's (here zeros, so every logit is 0)
    let mut f = files();
    f.safetensors = rewrite(&f.safetensors, |mut l| {
        let (_, d, s, b) = l.iter().find(|t| t.0 == "model.text_model.embed_tokens.weight").unwrap().clone();
        l.push(("lm_head.weight".into(), d, s, vec![0; b.len()]));
        l
    });
    let vlm = Vlm::load(&f, &device("flex")).unwrap();
    let head = vlm.model.text.lm_head.as_ref().expect("the file's lm_head is loaded");
    assert!(read_floats(head.full()).iter().all(|&v| v == 0.0));
    let tied = Vlm::load(&files(), &device("flex")).unwrap();
    assert!(tied.model.text.lm_head.is_none(), "without lm_head.weight the embeddings are the head");
}

#[test]
fn saving_a_model_under_another_config_names_the_first_tensor_that_differs() {
    use zoo_prune_web::model::tensors::model_tensors;
    let vlm = Vlm::load(&files(), &device("flex")).unwrap();
    let other = ModelFiles::from_dir(&fixtures().join("tiny_tiles")).unwrap();
    let other = zoo_prune_web::Idefics3Config::from_json(&other.config).unwrap();
    let e = model_tensors(&vlm.model, &other).err().expect("the shapes differ").to_string();
    assert!(e.contains("`model.vision_model.") && e.contains("the model's tensor has shape"), "{e}");
    let own = zoo_prune_web::Idefics3Config::from_json(&files().config).unwrap();
    // under its own config every tensor of the file comes back, under the file's names
    let mut saved: Vec<String> = model_tensors(&vlm.model, &own).unwrap().into_iter().map(|t| t.0).collect();
    let bytes = files().safetensors;
    let mut file: Vec<String> = SafeTensors::deserialize(&bytes).unwrap().names().into_iter().map(String::from).collect();
    saved.sort();
    file.sort();
    assert_eq!(saved, file);
}

#[test]
fn a_mapped_folder_loads_as_its_read_bytes_do() {
    // Vlm::open maps model.safetensors (the CLI's and the benchmarks' load); Vlm::load reads it.
    // Every tensor must come out the same (a wrong offset into the map, or the folder's other
    // files not read, would differ), and a missing file is named as from_dir names it.
    use zoo_prune_web::model::tensors::model_tensors;
    for m in ["tiny_single", "tiny_tiles"] {
        let dir = fixtures().join(m);
        let opened = Vlm::open(&dir, &device("flex"), &Default::default()).unwrap();
        let read = Vlm::load(&ModelFiles::from_dir(&dir).unwrap(), &device("flex")).unwrap();
        let (a, b) = (model_tensors(&opened.model, &opened.config).unwrap(), model_tensors(&read.model, &read.config).unwrap());
        assert_eq!(a.len(), b.len(), "{m}");
        for ((na, sa, va), (nb, sb, vb)) in a.iter().zip(&b) {
            assert_eq!((na, sa), (nb, sb), "{m}");
            assert!(va.iter().zip(vb).all(|(x, y)| x.to_bits() == y.to_bits()), "{m}: `{na}` differs");
        }
        assert_eq!(opened.processor.longest_edge, read.processor.longest_edge, "{m}");
        assert_eq!(opened.tokenizer.eos_ids, read.tokenizer.eos_ids, "{m}");
    }
    let dir = std::env::temp_dir().join(format!("zpw-open-missing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(fixtures().join("tiny_single").join(f), dir.join(f)).unwrap();
    }
    let err = Vlm::open(&dir, &device("flex"), &Default::default()).err().expect("no model.safetensors").to_string();
    assert!(err.contains("cannot read") && err.contains("model.safetensors"), "{err}");
    std::fs::write(dir.join("model.safetensors"), b"").unwrap();
    let err = Vlm::open(&dir, &device("flex"), &Default::default()).err().expect("an empty file").to_string();
    assert!(err.contains("safetensors header"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
