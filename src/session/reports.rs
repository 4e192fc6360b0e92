//! What a [`super::Session`] reports, as the page receives it (serde: `web.rs` turns each into a
//! JS object; the native tests read the same structs): the model, the tiling choices, an encoding,
//! a ranking with its steps, a comparison of two methods, an answer's timings.

use serde::Serialize;

use crate::prune;

/// Timings of the last answer.
#[derive(Default, Clone, Debug, Serialize)]
pub struct Timings {
    pub tiles: usize,
    /// prompt length the LLM saw (after pruning)
    pub prompt_tokens: usize,
    pub visual_tokens: usize,
    /// visual tokens the answer saw, and the method that chose them
    pub kept_tokens: usize,
    pub method: Option<String>,
    /// "renumber" or "keep": the RoPE positions the kept tokens had
    pub positions: &'static str,
    /// decode + preprocess + tokenise, on the CPU
    pub preprocess_ms: f64,
    /// vision encoder + connector, until the features are on the device
    pub encode_ms: f64,
    /// the last ranking (one readback, greedy loops on the CPU)
    pub rank_ms: Option<f64>,
    /// from the call to `answer` until the first answer token was read back
    pub first_token_ms: Option<f64>,
    pub tokens: usize,
    /// decoding speed after the first token: (tokens - 1) / time since the first token
    pub tokens_per_s: Option<f64>,
    pub total_ms: Option<f64>,
    /// the KV cache's size after the last token (`Generation::kv_cache_bytes`)
    pub kv_cache_bytes: Option<usize>,
}

/// The model's facts the page shows and builds its controls from.
#[derive(Clone, Debug, Serialize)]
pub struct ModelInfo {
    pub tokens_per_tile: usize,
    pub tile_size: usize,
    pub vision_layers: usize,
    pub text_layers: usize,
    pub text_hidden: usize,
    pub vocab_size: usize,
    pub params: usize,
    pub methods: &'static [&'static str],
    /// the methods whose ranking depends on the question (their ranking key includes it)
    pub prompt_methods: Vec<&'static str>,
    pub image_size: usize,
    pub patch_size: usize,
    pub scale_factor: usize,
    pub longest_edge: usize,
    pub image_splitting: bool,
    /// each method's parameters with their defaults for this model (as `rank` reports them)
    pub method_defaults: std::collections::BTreeMap<&'static str, prune::EffectiveParams>,
    pub proxies: &'static [&'static str],
    pub fusions: &'static [&'static str],
    /// cdpruner's relevance signs
    pub relevance_signs: &'static [&'static str],
}

/// One tiling choice for an image (`Session::tiling`).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct TilingChoice {
    /// 0 = the model's own setting
    pub max_grid: usize,
    pub rows: usize,
    pub cols: usize,
    pub tiles: usize,
    pub visual_tokens: usize,
}

/// What `encode` reports.
#[derive(Clone, Debug, Serialize)]
pub struct Encoding {
    pub tiles: usize,
    /// 0 and 0 when the image was not split
    pub rows: usize,
    pub cols: usize,
    pub tokens_per_tile: usize,
    pub visual_tokens: usize,
    /// the leading tokens that belong to the tile grid; the rest are the global image's
    pub grid_tokens: usize,
    pub image_width: usize,
    pub image_height: usize,
    /// [x, y, w, h] in original-image pixels, one per visual token in prompt order
    pub token_rects: Vec<[f32; 4]>,
    pub prompt_tokens: usize,
    pub preprocess_ms: f64,
    pub encode_ms: f64,
}

/// One greedy pick, as `rank` reports it (None where the value is NaN or infinite).
#[derive(Clone, Debug, Serialize)]
pub struct StepReport {
    pub token: usize,
    pub score: Option<f64>,
    pub weight: Option<f64>,
    pub distance: Option<f64>,
}

/// What `rank` reports.
#[derive(Clone, Debug, Serialize)]
pub struct RankReport {
    pub method: String,
    /// "per-tile" or "global"
    pub budget: &'static str,
    /// the method's effective parameters
    pub params: prune::EffectiveParams,
    /// the full keep order (visual-token indices, the first kept first)
    pub order: Vec<usize>,
    /// None where the method has no score for a token
    pub scores: Vec<Option<f64>>,
    pub warnings: Vec<String>,
    pub deep_drop: Option<prune::DeepDrop>,
    pub steps: Vec<StepReport>,
    pub rank_ms: f64,
    /// Spearman's rho of this keep order against the feature norm's (same budget mode)
    pub spearman_vs_norm: Option<f64>,
    /// the same between the scores themselves, where the method scores every token
    pub spearman_scores_vs_norm: Option<f64>,
}

/// What `compare` reports: how another method's ranking agrees with the current one.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    pub method: String,
    pub params: prune::EffectiveParams,
    /// overlap[k - 1]: tokens both keep at a budget of k
    pub overlap: Vec<usize>,
    /// Spearman's rho between the two keep orders
    pub spearman: Option<f64>,
}
