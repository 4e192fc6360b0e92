//! The project's own small Idefics3 model (issue 5): its word-level tokenizer, its config and
//! processor settings, training initialisation, the scenes it learns from, and writing an HF-layout
//! model folder (its training loss and auxiliary labels: [`training`]) that [`crate::ModelFiles`] / [`crate::Vlm::load`] read back like any hub checkpoint.
//!
//! Everything the training bin (`src/bin/train.rs`) and the tests share lives here, so the model
//! is trained on exactly what inference sees: scenes from [`crate::scenes`] go through
//! [`ProcessedImage::new`] with the model's own `preprocessor_config.json` and the prompt through
//! [`PromptTokenizer::prompt_ids`] on the model's own `tokenizer.json`.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData};
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use tokenizers::models::wordlevel::WordLevel;
use tokenizers::normalizers::Lowercase;
use tokenizers::pre_tokenizers::punctuation::Punctuation;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::whitespace::WhitespaceSplit;
use tokenizers::{AddedToken, PreTokenizerWrapper, Tokenizer};

use crate::config::Idefics3Config;
use crate::error::{Error, Result};
use crate::model::{ForwardOptions, Idefics3, LayerKv};
use crate::preprocess::{ProcessedImage, ProcessorConfig, RgbImage};
use crate::prompt::{PromptTokenizer, END_OF_UTTERANCE, FAKE_TOKEN, GLOBAL_IMG_TOKEN, IMAGE_TOKEN};
use crate::rng::SplitMix64;
use crate::model::tensors::checkpoint_tensors;
use crate::scenes::{scene_seed, vocabulary, Colour, Qa, Scene, SceneConfig, Shape, Size, Split};

pub const PAD_TOKEN: &str = "<pad>";
pub const UNK_TOKEN: &str = "<unk>";
pub const IM_START: &str = "<|im_start|>";
/// Largest tile grid side with `<row_r_col_c>` tokens (SmolVLM's tokenizer also stops at 6; the
/// page offers up to 4 x 4).
pub const MAX_GRID_SIDE: usize = 6;

/// The tile side: scenes are rendered at this size and kept as one tile.
pub const TILE: usize = 128;

/// Every token, in id order: padding, unknown, the chat and image specials, the grid markers,
/// "\n", the chat roles and ":", then [`vocabulary`]. `<image>` is id 4.
pub fn token_list() -> Vec<String> {
    let mut v: Vec<String> =
        [PAD_TOKEN, UNK_TOKEN, IM_START, END_OF_UTTERANCE, IMAGE_TOKEN, FAKE_TOKEN, GLOBAL_IMG_TOKEN]
            .iter()
            .map(|s| s.to_string())
            .collect();
    for r in 1..=MAX_GRID_SIDE {
        for c in 1..=MAX_GRID_SIDE {
            v.push(format!("<row_{r}_col_{c}>"));
        }
    }
    v.push("\n".into());
    for w in ["user", ":", "assistant"] {
        v.push(w.into());
    }
    for w in vocabulary() {
        assert!(!v.iter().any(|x| x == w), "scene word {w:?} collides with a chat token");
        v.push(w.into());
    }
    v
}

/// The word-level tokenizer: lower-cased text split on whitespace with every punctuation mark a
/// token of its own (so "circle?" is "circle" "?" and "User:" is "user" ":"); the special tokens
/// and "\n" are matched in the raw text first. Unknown words become `<unk>`. Decoding joins words
/// with spaces.
pub fn tokenizer() -> Tokenizer {
    let tokens = token_list();
    let vocab = tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
    let model = WordLevel::builder()
        .vocab(vocab)
        .unk_token(UNK_TOKEN.into())
        .build()
        .expect("word-level vocabulary");
    let mut tok = Tokenizer::new(model);
    tok.with_normalizer(Some(Lowercase));
    let pre = Sequence::new(vec![
        PreTokenizerWrapper::WhitespaceSplit(WhitespaceSplit),
        PreTokenizerWrapper::Punctuation(Punctuation::default()),
    ]);
    tok.with_pre_tokenizer(Some(pre));
    let special: Vec<AddedToken> = tokens
        .iter()
        .filter(|t| t.starts_with('<'))
        .map(|t| AddedToken::from(t.clone(), true).normalized(false))
        .collect();
    tok.add_special_tokens(&special);
    tok.add_tokens(&[AddedToken::from("\n", false).normalized(false)]);
    tok
}

/// `tokenizer.json` of the built-in model.
pub fn tokenizer_json() -> String {
    tokenizer().to_string(true).expect("serialise tokenizer")
}

pub fn vocab_size() -> usize {
    token_list().len()
}

pub fn token_id(token: &str) -> u32 {
    token_list().iter().position(|t| t == token).unwrap_or_else(|| panic!("no token {token:?}")) as u32
}

/// The sizes of a built-in model (the HF config fields that differ between candidates).
#[derive(Clone, Debug)]
pub struct Sizes {
    pub vision_hidden: usize,
    pub vision_intermediate: usize,
    pub vision_layers: usize,
    pub vision_heads: usize,
    pub patch: usize,
    pub scale_factor: usize,
    pub text_hidden: usize,
    pub text_intermediate: usize,
    pub text_layers: usize,
    pub text_heads: usize,
    pub text_kv_heads: usize,
}

impl Sizes {
    /// The built-in model: 128 px tile, patch 16 (8 x 8 patches), no pixel shuffle (scale factor
    /// 1) -> 64 visual tokens, each one 16 px patch; SigLIP 96 wide x 3 layers, Llama 128 wide x 4
    /// layers with 4 query / 2 KV heads. (Patch 8 with a 2x shuffle gives the same 64 tokens, but
    /// its encoder over 256 patches trained 8x slower and learned shapes no faster.)
    pub fn builtin() -> Self {
        Self {
            vision_hidden: 96,
            vision_intermediate: 384,
            vision_layers: 3,
            vision_heads: 4,
            patch: 16,
            scale_factor: 1,
            text_hidden: 128,
            text_intermediate: 384,
            text_layers: 4,
            text_heads: 4,
            text_kv_heads: 2,
        }
    }

    /// A much smaller model of the same layout (tests).
    pub fn tiny() -> Self {
        Self {
            vision_hidden: 32,
            vision_intermediate: 64,
            vision_layers: 2,
            vision_heads: 2,
            patch: 16,
            scale_factor: 2,
            text_hidden: 32,
            text_intermediate: 64,
            text_layers: 2,
            text_heads: 4,
            text_kv_heads: 2,
        }
    }

    /// `config.json` (HF Idefics3 field names; transformers' Idefics3Config reads it).
    pub fn config_json(&self) -> String {
        let v = serde_json::json!({
            "architectures": ["Idefics3ForConditionalGeneration"],
            "model_type": "idefics3",
            "torch_dtype": "float32",
            "image_token_id": token_id(IMAGE_TOKEN),
            "pad_token_id": token_id(PAD_TOKEN),
            "scale_factor": self.scale_factor,
            "tie_word_embeddings": false,
            "vision_config": {
                "model_type": "idefics3_vision",
                "hidden_size": self.vision_hidden,
                "intermediate_size": self.vision_intermediate,
                "num_hidden_layers": self.vision_layers,
                "num_attention_heads": self.vision_heads,
                "num_channels": 3,
                "image_size": TILE,
                "patch_size": self.patch,
                "hidden_act": "gelu_pytorch_tanh",
                "layer_norm_eps": 1e-6,
                "attention_dropout": 0.0,
                "initializer_range": 0.02
            },
            "text_config": {
                "model_type": "llama",
                "vocab_size": vocab_size(),
                "hidden_size": self.text_hidden,
                "intermediate_size": self.text_intermediate,
                "num_hidden_layers": self.text_layers,
                "num_attention_heads": self.text_heads,
                "num_key_value_heads": self.text_kv_heads,
                "head_dim": self.text_hidden / self.text_heads,
                "hidden_act": "silu",
                "rms_norm_eps": 1e-5,
                "rope_theta": 10000.0,
                "max_position_embeddings": 2048,
                "attention_bias": false,
                "mlp_bias": false,
                "tie_word_embeddings": false,
                "pad_token_id": token_id(PAD_TOKEN),
                "eos_token_id": token_id(END_OF_UTTERANCE),
                "initializer_range": 0.02
            }
        });
        serde_json::to_string_pretty(&v).unwrap()
    }

    pub fn config(&self) -> Idefics3Config {
        Idefics3Config::from_json(self.config_json().as_bytes()).expect("valid built-in config")
    }
}

/// `preprocessor_config.json`: no splitting, longest edge = the tile, so a 128 x 128 scene is one
/// tile and reaches the encoder unresampled (a same-size resize is the identity). Mean = std =
/// 0.5 like SmolVLM.
pub fn preprocessor_json() -> String {
    let v = serde_json::json!({
        "image_processor_type": "Idefics3ImageProcessor",
        "do_convert_rgb": true,
        "do_resize": true,
        "size": {"longest_edge": TILE},
        "resample": 1,
        "do_rescale": true,
        "rescale_factor": 1.0 / 255.0,
        "do_normalize": true,
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
        "do_image_splitting": false,
        "max_image_size": {"longest_edge": TILE},
        "do_pad": true
    });
    serde_json::to_string_pretty(&v).unwrap()
}

/// The scenes the model is trained and tested on: 128 x 128, objects scaled from the 64 px ones.
pub fn scene_config() -> SceneConfig {
    SceneConfig::sized(TILE, TILE)
}

// ---------------------------------------------------------------------------------------------
// Weights
// ---------------------------------------------------------------------------------------------

/// f32 safetensors bytes from (HF name, torch shape, values).
pub fn serialize_f32(tensors: &[(String, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    let bytes: Vec<Vec<u8>> =
        tensors.iter().map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect()).collect();
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((n, s, _), b)| (n.clone(), TensorView::new(Dtype::F32, s.clone(), b).expect("view")))
        .collect();
    safetensors::serialize(views, None).expect("serialise")
}

/// A training initialisation in HF layout (f32), as HF's `_init_weights` with initializer_range
/// 0.02 but uniform: matrices, embeddings and position embeddings uniform with std 0.02, biases 0,
/// norm gains 1. Deterministic for a seed.
pub fn init_tensors(c: &Idefics3Config, seed: u64) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let mut rng = SplitMix64::new(seed);
    let half_width = 0.02 * 3f64.sqrt();
    checkpoint_tensors(c)
        .into_iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            let values: Vec<f32> = if name.ends_with("position_embedding.weight") {
                sincos_2d(shape[0], shape[1], 0.2)
            } else if shape.len() >= 2 {
                (0..n).map(|_| ((rng.uniform() * 2.0 - 1.0) * half_width) as f32).collect()
            } else if name.contains("norm") && name.ends_with("weight") {
                vec![1.0; n]
            } else {
                vec![0.0; n]
            };
            (name, shape, values)
        })
        .collect()
}

/// 2-D sine-cosine position embeddings of a square grid of `n` patches, `d` channels (MAE's
/// layout: the first half of the channels encodes the row, the second the column, each as sines
/// then cosines of d/4 frequencies), times `scale`. Neighbouring patches start with similar
/// embeddings, which a vision transformer trained from scratch otherwise has to learn.
pub fn sincos_2d(n: usize, d: usize, scale: f32) -> Vec<f32> {
    let side = (n as f64).sqrt() as usize;
    assert!(side * side == n && d % 4 == 0, "sincos_2d needs a square grid and d % 4 == 0");
    let q = d / 4;
    let mut out = vec![0f32; n * d];
    for p in 0..n {
        for (half, pos) in [(0, p / side), (1, p % side)] {
            for k in 0..q {
                let w = 1.0 / 10000f64.powf(k as f64 / q as f64);
                let a = pos as f64 * w;
                out[p * d + half * 2 * q + k] = a.sin() as f32 * scale;
                out[p * d + half * 2 * q + q + k] = a.cos() as f32 * scale;
            }
        }
    }
    out
}

/// Writes an HF-layout model folder: config.json, model.safetensors (f32), tokenizer.json,
/// preprocessor_config.json.
#[cfg(not(target_family = "wasm"))]
pub fn write_model_dir(dir: &std::path::Path, sizes: &Sizes, model: &Idefics3) -> Result<()> {
    let io = |e: std::io::Error| Error::Other(format!("cannot write {}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(io)?;
    let config = sizes.config();
    std::fs::write(dir.join("config.json"), sizes.config_json()).map_err(io)?;
    std::fs::write(dir.join("model.safetensors"), serialize_f32(&crate::model::tensors::model_tensors(model, &config)?)).map_err(io)?;
    std::fs::write(dir.join("tokenizer.json"), tokenizer_json()).map_err(io)?;
    std::fs::write(dir.join("preprocessor_config.json"), preprocessor_json()).map_err(io)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Data and loss
// ---------------------------------------------------------------------------------------------

/// What turns a scene + question into model inputs: the model's own tokenizer and processor.
pub struct DataSource {
    pub tokenizer: PromptTokenizer,
    pub processor: ProcessorConfig,
    pub scenes: SceneConfig,
    pub image_seq_len: usize,
    pub image_token_id: u32,
    pub pad_id: u32,
    pub eou_id: u32,
}

/// One training / evaluation example.
pub struct Example {
    pub scene: Scene,
    pub qa: Qa,
    /// [tiles, 3, tile, tile] normalised pixels (one tile).
    pub pixels: Vec<f32>,
    pub num_tiles: usize,
    /// The full prompt, ending in "Assistant:".
    pub prompt: Vec<u32>,
    /// The answer's tokens followed by `<end_of_utterance>`.
    pub answer: Vec<u32>,
}

impl DataSource {
    /// From the files as a model folder holds them (the same readers `Vlm::load` uses).
    pub fn new(config: &Idefics3Config, tokenizer_json: &[u8], preprocessor_json: &[u8]) -> Result<Self> {
        let tokenizer = PromptTokenizer::from_bytes(tokenizer_json, config.image_token_id, &[])?;
        let processor = ProcessorConfig::from_json(preprocessor_json, config.vision_config.image_size)?;
        let id = |t: &str| {
            tokenizer.tokenizer.token_to_id(t).ok_or_else(|| Error::Tokenizer(format!("no {t} token")))
        };
        Ok(Self {
            pad_id: id(PAD_TOKEN)?,
            eou_id: id(END_OF_UTTERANCE)?,
            tokenizer,
            processor,
            scenes: scene_config(),
            image_seq_len: config.tokens_per_tile(),
            image_token_id: config.image_token_id,
        })
    }

    /// The built-in model's data source.
    pub fn builtin(sizes: &Sizes) -> Self {
        Self::new(&sizes.config(), tokenizer_json().as_bytes(), preprocessor_json().as_bytes())
            .expect("built-in files")
    }

    /// Scene `index` of `split` with one sampled question (seeded by the scene's seed).
    pub fn example(&self, split: Split, index: u64) -> Result<Example> {
        let seed = scene_seed(split, index);
        let scene = Scene::generate(seed, &self.scenes);
        let qa = scene.sample_qa(seed);
        self.example_for(scene, qa)
    }

    pub fn example_for(&self, scene: Scene, qa: Qa) -> Result<Example> {
        let img = scene_image(&scene);
        let processed = ProcessedImage::new(&img, &self.processor)?;
        let prompt =
            self.tokenizer.prompt_ids(&qa.question, processed.rows, processed.cols, self.image_seq_len)?;
        let mut answer = self.tokenizer.encode(&qa.answer)?;
        answer.push(self.eou_id);
        Ok(Example { scene, qa, pixels: processed.pixels, num_tiles: processed.num_tiles, prompt, answer })
    }
}

pub fn scene_image(scene: &Scene) -> RgbImage {
    RgbImage { width: scene.width, height: scene.height, data: scene.pixels.clone() }
}

/// Greedy answer through the inference path (preprocess, encode, prompt, [`crate::Vlm::start_answer`],
/// streamed tokens), decoded and trimmed.
#[cfg(not(target_family = "wasm"))]
pub fn greedy_answer(vlm: &crate::Vlm, scene: &Scene, question: &str, max_new_tokens: usize) -> Result<String> {
    let processed = vlm.preprocess(&scene_image(scene), None)?;
    let ids = vlm.prompt_ids(question, &processed)?;
    let enc = pollster::block_on(vlm.encode(processed, &[]))?;
    vlm.answer_all(&ids, &enc, max_new_tokens)
}

pub mod training;
pub use training::*;
