//! Config structs mirroring an HF Idefics3 `config.json` (SmolVLM-256M/500M and tiny test models).
//!
//! Fields that a hub config may omit fall back to the defaults of the matching transformers config
//! class (`Idefics3VisionConfig`, `LlamaConfig`, `Idefics3Config`).

use serde::Deserialize;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Deserialize)]
pub struct VisionConfig {
    #[serde(default = "d_v_hidden")]
    pub hidden_size: usize,
    #[serde(default = "d_v_inter")]
    pub intermediate_size: usize,
    #[serde(default = "d_12")]
    pub num_hidden_layers: usize,
    #[serde(default = "d_v_heads")]
    pub num_attention_heads: usize,
    #[serde(default = "d_3")]
    pub num_channels: usize,
    #[serde(default = "d_v_image")]
    pub image_size: usize,
    #[serde(default = "d_v_patch")]
    pub patch_size: usize,
    #[serde(default = "d_gelu_tanh")]
    pub hidden_act: String,
    #[serde(default = "d_1e6")]
    pub layer_norm_eps: f64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RopeParameters {
    pub rope_theta: Option<f64>,
    pub rope_type: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TextConfig {
    #[serde(default = "d_t_vocab")]
    pub vocab_size: usize,
    #[serde(default = "d_t_hidden")]
    pub hidden_size: usize,
    #[serde(default = "d_t_inter")]
    pub intermediate_size: usize,
    #[serde(default = "d_32")]
    pub num_hidden_layers: usize,
    #[serde(default = "d_32")]
    pub num_attention_heads: usize,
    pub num_key_value_heads: Option<usize>,
    pub head_dim: Option<usize>,
    #[serde(default = "d_silu")]
    pub hidden_act: String,
    #[serde(default = "d_1e5")]
    pub rms_norm_eps: f64,
    /// transformers <= 4.x writes `rope_theta` at the top of text_config ...
    pub rope_theta: Option<f64>,
    /// ... transformers 5 writes it inside `rope_parameters`.
    pub rope_parameters: Option<RopeParameters>,
    pub rope_scaling: Option<serde_json::Value>,
    #[serde(default = "d_t_maxpos")]
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: Option<bool>,
    #[serde(default)]
    pub attention_bias: bool,
    #[serde(default)]
    pub mlp_bias: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Idefics3Config {
    #[serde(default)]
    pub model_type: Option<String>,
    #[serde(default = "d_image_token")]
    pub image_token_id: u32,
    #[serde(default = "d_2")]
    pub scale_factor: usize,
    #[serde(default)]
    pub tie_word_embeddings: Option<bool>,
    pub vision_config: VisionConfig,
    pub text_config: TextConfig,
}

fn d_v_hidden() -> usize { 1152 }
fn d_v_inter() -> usize { 3072 }
fn d_12() -> usize { 12 }
fn d_v_heads() -> usize { 16 }
fn d_3() -> usize { 3 }
fn d_2() -> usize { 2 }
fn d_v_image() -> usize { 224 }
fn d_v_patch() -> usize { 32 }
fn d_gelu_tanh() -> String { "gelu_pytorch_tanh".into() }
fn d_1e6() -> f64 { 1e-6 }
fn d_1e5() -> f64 { 1e-5 }
fn d_t_vocab() -> usize { 32000 }
fn d_t_hidden() -> usize { 4096 }
fn d_t_inter() -> usize { 11008 }
fn d_32() -> usize { 32 }
fn d_silu() -> String { "silu".into() }
fn d_t_maxpos() -> usize { 2048 }
fn d_image_token() -> u32 { 128257 }

/// Grid sides n <= 128 for which HF Idefics3VisionEmbeddings' position ids (torch.bucketize of
/// float32 aranges) are NOT simply 0..n*n; computed with torch 2.15:
/// `[n for n in range(1, 129) if not torch.equal(torch.bucketize(torch.arange(0, 1 - 1e-6, 1 / n),
///   torch.arange(1 / n, 1.0, 1 / n), right=True), torch.arange(n))]`.
/// SmolVLM-256M/500M (32) and Idefics3-8B (26) are not among them.
const POSITION_BUCKETS_NOT_IDENTITY: &[usize] = &[
    19, 23, 25, 27, 37, 38, 40, 41, 43, 46, 47, 48, 49, 50, 52, 54, 55, 58, 59, 61, 62, 67, 68, 71, 72,
    73, 74, 75, 76, 77, 79, 80, 82, 83, 84, 86, 87, 92, 93, 94, 95, 96, 98, 99, 100, 101, 103, 104,
    107, 108, 109, 110, 111, 112, 113, 114, 115, 116, 118, 121, 122, 123, 124, 125, 127,
];

impl VisionConfig {
    pub fn patches_per_side(&self) -> usize {
        self.image_size / self.patch_size
    }
    pub fn num_patches(&self) -> usize {
        self.patches_per_side() * self.patches_per_side()
    }
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

impl TextConfig {
    pub fn num_kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }
    pub fn head_dim(&self) -> usize {
        self.head_dim.unwrap_or(self.hidden_size / self.num_attention_heads)
    }
    pub fn rope_theta(&self) -> f64 {
        self.rope_parameters
            .as_ref()
            .and_then(|p| p.rope_theta)
            .or(self.rope_theta)
            .unwrap_or(10000.0)
    }
}

impl Idefics3Config {
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let cfg: Idefics3Config = serde_json::from_slice(bytes)
            .map_err(|e| Error::Config(format!("config.json is not a valid Idefics3 config: {e}")))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// lm_head shares embed_tokens' weight. HF reads the top-level flag (Idefics3Config), falling back
    /// to text_config's.
    pub fn tied_embeddings(&self) -> bool {
        self.tie_word_embeddings
            .or(self.text_config.tie_word_embeddings)
            .unwrap_or(false)
    }

    /// Visual tokens per image tile after the pixel shuffle.
    pub fn tokens_per_tile(&self) -> usize {
        self.vision_config.num_patches() / (self.scale_factor * self.scale_factor)
    }

    fn validate(&self) -> Result<()> {
        let v = &self.vision_config;
        let t = &self.text_config;
        let bad = |m: String| Err(Error::Config(m));
        if let Some(mt) = &self.model_type {
            if mt != "idefics3" && mt != "smolvlm" {
                return bad(format!("model_type is {mt:?}, expected \"idefics3\""));
            }
        }
        // Sizes beyond any Idefics3 checkpoint: refused before anything is allocated from them
        // (a number read from a damaged file must not become an allocation or a division by 0).
        let ranges: [(&str, usize, usize, usize); 15] = [
            ("vision_config.hidden_size", v.hidden_size, 1, 1 << 16),
            ("vision_config.intermediate_size", v.intermediate_size, 1, 1 << 18),
            ("vision_config.num_hidden_layers", v.num_hidden_layers, 1, 1024),
            ("vision_config.num_attention_heads", v.num_attention_heads, 1, 1024),
            ("vision_config.num_channels", v.num_channels, 3, 3),
            ("vision_config.image_size", v.image_size, 1, 1 << 13),
            ("vision_config.patch_size", v.patch_size, 1, 1 << 13),
            ("scale_factor", self.scale_factor, 1, 64),
            ("text_config.vocab_size", t.vocab_size, 1, 1 << 22),
            ("text_config.hidden_size", t.hidden_size, 1, 1 << 16),
            ("text_config.intermediate_size", t.intermediate_size, 1, 1 << 18),
            ("text_config.num_hidden_layers", t.num_hidden_layers, 1, 1024),
            ("text_config.num_attention_heads", t.num_attention_heads, 1, 1024),
            ("text_config.num_key_value_heads", t.num_kv_heads(), 1, 1024),
            ("text_config.max_position_embeddings", t.max_position_embeddings, 1, 1 << 24),
        ];
        for (name, value, lo, hi) in ranges {
            if value < lo || value > hi {
                return bad(format!("{name} is {value}; it must be between {lo} and {hi}"));
            }
        }
        if t.head_dim.is_some_and(|h| h == 0 || h > 1 << 12) {
            return bad(format!("text_config.head_dim is {}; it must be between 1 and 4096", t.head_dim.unwrap()));
        }
        for (name, eps) in [("vision_config.layer_norm_eps", v.layer_norm_eps), ("text_config.rms_norm_eps", t.rms_norm_eps)] {
            if !(eps.is_finite() && eps > 0.0 && eps < 1.0) {
                return bad(format!("{name} is {eps:e}; it must be a small positive number"));
            }
        }
        let theta = t.rope_theta();
        if !(theta.is_finite() && theta > 1.0) {
            return bad(format!("text_config rope_theta is {theta}; it must be a finite number above 1"));
        }
        if v.image_size % v.patch_size != 0 {
            return bad(format!(
                "vision image_size {} is not a multiple of patch_size {}",
                v.image_size, v.patch_size
            ));
        }
        if POSITION_BUCKETS_NOT_IDENTITY.contains(&v.patches_per_side()) {
            return bad(format!(
                "{} patches per side: HF computes this grid's position ids with a float bucketize that \
                 is not 0..n for this size, which this port does not reproduce",
                v.patches_per_side()
            ));
        }
        if v.patches_per_side() % self.scale_factor != 0 {
            return bad(format!(
                "{} patches per side cannot be pixel-shuffled by scale_factor {}",
                v.patches_per_side(),
                self.scale_factor
            ));
        }
        if v.hidden_size % v.num_attention_heads != 0 {
            return bad("vision hidden_size is not divisible by num_attention_heads".into());
        }
        if v.hidden_act != "gelu_pytorch_tanh" && v.hidden_act != "gelu" {
            return bad(format!("unsupported vision hidden_act {:?}", v.hidden_act));
        }
        if t.hidden_act != "silu" {
            return bad(format!("unsupported text hidden_act {:?}", t.hidden_act));
        }
        if t.num_attention_heads % t.num_kv_heads() != 0 {
            return bad("text num_attention_heads is not a multiple of num_key_value_heads".into());
        }
        if t.head_dim() % 2 != 0 {
            return bad("text head_dim must be even for rotary embeddings".into());
        }
        if let Some(p) = &t.rope_parameters {
            if let Some(rt) = &p.rope_type {
                if rt != "default" {
                    return bad(format!("unsupported rope_type {rt:?} (only \"default\")"));
                }
            }
        }
        if let Some(s) = &t.rope_scaling {
            if !s.is_null() {
                return bad("rope_scaling is not supported".into());
            }
        }
        if self.image_token_id as usize >= t.vocab_size {
            return bad("image_token_id is outside the text vocabulary".into());
        }
        Ok(())
    }
}
