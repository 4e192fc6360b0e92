//! Visual-token pruning. Every method produces one thing: a [`Ranking`], the full order in which
//! the visual tokens are kept. A budget of k tokens is the first k of the order, so changing the
//! budget (the page's slider) never recomputes anything.
//!
//! Files, one per paper concept: `zoo` (ZOO-Prune's zeroth-order sensitivity), `select` (the greedy
//! loops: sensitivity-aware diversity, DivPrune, prompt-aware), `cdpruner` (CDPruner's conditional
//! DPP), `scores` (attention, norm and relevance scores for the baselines), `rng` (the seeded
//! generator shared with the numpy reference).

pub mod agreement;
pub mod apply;
pub mod cdpruner;
pub mod params;
pub mod rng;
pub mod scores;
pub mod select;
pub mod zoo;

use burn::tensor::Tensor;

use crate::error::{Error, Result};
use crate::readback::read_floats;
use crate::model::{EncodedTiles, Idefics3};
pub use apply::Positions;
pub use cdpruner::RelevanceSign;
pub use params::{EffectiveParams, MethodParams};
pub use select::{Fusion, Step};
pub use zoo::{Estimator, Proxy, ZooParams};

#[derive(Clone, Debug)]
pub enum Method {
    /// ZOO-Prune: sensitivity + sensitivity-aware diversity selection.
    Zoo { params: ZooParams, fusion: Fusion },
    /// DivPrune: max-min diversity of the projected tokens.
    DivPrune,
    /// After ZSPAPrune: `core_share` of the budget by relevance to the prompt, the rest by diversity.
    PromptAware { core_share: f64 },
    /// Uniformly random (seeded).
    Random { seed: u64 },
    /// VisionZip-style: attention each token receives in the vision encoder at `layer` (None: the
    /// last layer whose maps were computed; `MethodParams::build` makes it the encoder's last).
    VisionZip { layer: Option<usize> },
    /// FastV: attention of the last prompt token over the image tokens at LLM `layer`.
    FastV { layer: usize },
    /// Information horizon: DivPrune at the input, then random dropping of the kept visual tokens
    /// at LLM layer `deep_layer` (None: 2/3 of the depth, chosen when ranking), keeping `deep_keep`
    /// of them (see [`DeepDrop`]).
    InfoHorizon { deep_layer: Option<usize>, deep_keep: f64, seed: u64 },
    /// Feature norm of the encoder output (how a replication explained ZOO's ranking).
    FeatureNorm,
    /// CDPruner: greedy MAP of a DPP whose kernel is the tokens' similarity conditioned on their
    /// relevance to the question (`sign`: the official negation or not).
    CdPruner { sign: RelevanceSign },
}

impl Method {
    pub fn name(&self) -> &'static str {
        match self {
            Method::Zoo { .. } => "zoo",
            Method::DivPrune => "divprune",
            Method::PromptAware { .. } => "prompt-aware",
            Method::Random { .. } => "random",
            Method::VisionZip { .. } => "visionzip",
            Method::FastV { .. } => "fastv",
            Method::InfoHorizon { .. } => "info-horizon",
            Method::FeatureNorm => "feature-norm",
            Method::CdPruner { .. } => "cdpruner",
        }
    }

    pub const NAMES: &'static [&'static str] =
        &["zoo", "divprune", "prompt-aware", "random", "visionzip", "fastv", "info-horizon", "feature-norm", "cdpruner"];

    /// The method with its default parameters.
    pub fn by_name(name: &str, seed: u64) -> Result<Self> {
        Ok(match name {
            "zoo" => Method::Zoo { params: ZooParams { seed, ..Default::default() }, fusion: Fusion::Multiply },
            "divprune" => Method::DivPrune,
            "prompt-aware" | "zspa" => Method::PromptAware { core_share: 0.6 },
            "random" => Method::Random { seed },
            "visionzip" => Method::VisionZip { layer: None },
            "fastv" => Method::FastV { layer: 2 },
            "info-horizon" => Method::InfoHorizon { deep_layer: None, deep_keep: 0.5, seed },
            "feature-norm" | "norm" => Method::FeatureNorm,
            "cdpruner" => Method::CdPruner { sign: RelevanceSign::DEFAULT },
            other => {
                return Err(Error::Other(format!(
                    "unknown pruning method {other:?}; choose one of {:?}",
                    Method::NAMES
                )))
            }
        })
    }

    /// Methods whose ranking depends on the question (the page re-ranks when it changes).
    pub fn needs_prompt(&self) -> bool {
        matches!(self, Method::PromptAware { .. } | Method::FastV { .. } | Method::CdPruner { .. })
    }
}

/// How a budget is shared by the tiles of a split image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BudgetMode {
    /// Equal share per tile (the authors' choice for LLaVA-NeXT crops): each tile is ranked on its
    /// own and the tiles' orders are interleaved round-robin.
    PerTile,
    /// One ranking over all visual tokens of the image.
    Global,
}

impl BudgetMode {
    /// "per-tile" (also "") or "global".
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "per-tile" | "" => Ok(BudgetMode::PerTile),
            "global" => Ok(BudgetMode::Global),
            other => Err(Error::Other(format!("unknown budget mode {other:?}: choose \"per-tile\" or \"global\""))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BudgetMode::PerTile => "per-tile",
            BudgetMode::Global => "global",
        }
    }
}

/// Random dropping inside the LLM (information horizon): at `layer`, keep `keep` (a fraction) of
/// the visual tokens that reached the LLM, chosen with `seed`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct DeepDrop {
    pub layer: usize,
    pub keep: f64,
    pub seed: u64,
}

#[derive(Clone, Debug)]
pub struct Ranking {
    pub method: String,
    /// Visual-token indices (prompt order), the first kept first. A permutation of 0..n.
    pub order: Vec<usize>,
    /// The greedy picks in order (token = global index).
    pub steps: Vec<Step>,
    /// The method's per-token score (sensitivity, attention, relevance, norm; NaN where the method
    /// has none), for the heatmap.
    pub scores: Vec<f64>,
    /// Things a person should know about this ranking (e.g. a degenerate sensitivity).
    pub warnings: Vec<String>,
    pub deep_drop: Option<DeepDrop>,
}

impl Ranking {
    /// The kept tokens for a budget of k, in their original (prompt) order.
    pub fn keep(&self, k: usize) -> Vec<usize> {
        let mut v = self.order[..k.min(self.order.len())].to_vec();
        v.sort_unstable();
        v
    }
}

/// Number of tokens kept for a keep ratio (at least one).
pub fn budget(n: usize, ratio: f64) -> usize {
    ((n as f64 * ratio).round() as usize).clamp(1, n)
}

/// What the methods need: the encoded image and, for the prompt-aware ones, the prompt.
pub struct PruneInputs<'a> {
    pub model: &'a Idefics3,
    /// Connector output [tiles, tokens, d_t].
    pub features: &'a Tensor<3>,
    /// Last encoder states before post_layernorm [tiles, patches, d_v].
    pub pre_ln: &'a Tensor<3>,
    /// The last encoder block's residual before its MLP (ZOO's optional last-MLP proxy).
    pub pre_mlp: Option<&'a Tensor<3>>,
    /// Head-averaged vision attention maps by layer [tiles, patches, patches].
    pub vision_attentions: &'a [(usize, Tensor<3>)],
    /// Full prompt ids (with all `<image>` positions) and the image token id: FastV.
    pub prompt_ids: Option<&'a [u32]>,
    pub image_token_id: u32,
    /// The question's own token ids (no template): prompt-aware relevance.
    pub question_ids: Option<&'a [u32]>,
    /// ZOO's plan kept between rankings of one model (None: made anew each time).
    pub zoo_plans: Option<&'a zoo::PlanCache>,
}

impl<'a> PruneInputs<'a> {
    /// Everything an encoded image provides, and the prompt (full prompt ids with every `<image>`
    /// position, and the question's own ids).
    pub fn new(
        model: &'a Idefics3,
        tiles: &'a EncodedTiles,
        image_token_id: u32,
        prompt_ids: &'a [u32],
        question_ids: &'a [u32],
    ) -> Self {
        Self {
            model,
            features: &tiles.features,
            pre_ln: &tiles.pre_ln,
            pre_mlp: Some(&tiles.pre_mlp),
            vision_attentions: &tiles.attentions,
            prompt_ids: Some(prompt_ids),
            image_token_id,
            question_ids: Some(question_ids),
            zoo_plans: None,
        }
    }
}

/// Merges per-tile orders (local indices) round-robin into one global order.
fn interleave(per_tile: &[Vec<Step>], n_per_tile: usize) -> Vec<Step> {
    let mut out = Vec::new();
    let longest = per_tile.iter().map(|v| v.len()).max().unwrap_or(0);
    for r in 0..longest {
        for (t, steps) in per_tile.iter().enumerate() {
            if let Some(s) = steps.get(r) {
                out.push(Step { token: t * n_per_tile + s.token, ..*s });
            }
        }
    }
    out
}

/// Runs `select` on each tile's slice (PerTile) or on everything (Global).
fn per_budget(
    mode: BudgetMode,
    tiles: usize,
    n: usize,
    select: impl Fn(std::ops::Range<usize>) -> Vec<Step>,
) -> Vec<Step> {
    match mode {
        BudgetMode::Global => select(0..tiles * n),
        BudgetMode::PerTile => {
            let per: Vec<Vec<Step>> = (0..tiles).map(|t| select(t * n..(t + 1) * n)).collect();
            interleave(&per, n)
        }
    }
}

/// Cosine matrix of a range of rows of `z` [total, d].
fn cos_of(z: &[f64], d: usize, r: &std::ops::Range<usize>) -> Vec<f64> {
    select::cosine_matrix(&z[r.start * d..r.end * d], r.len(), d)
}

/// Ranks the visual tokens. One readback of the scores and features; the greedy loops run on
/// the CPU (they are sequential and tiny next to the model).
pub async fn rank(method: &Method, inp: &PruneInputs<'_>, mode: BudgetMode) -> Result<Ranking> {
    let [tiles, n, d] = inp.features.dims();
    let total = tiles * n;
    if method.needs_prompt() && inp.question_ids.is_none() && inp.prompt_ids.is_none() {
        return Err(Error::Other(format!("{} needs the prompt: ask a question first", method.name())));
    }
    let z: Vec<f64> =
        read_floats(inp.features.clone().reshape([total, d])).await?.into_iter().map(|v| v as f64).collect();
    let mut warnings = Vec::new();
    let mut deep_drop = None;
    let (scores, steps): (Vec<f64>, Vec<Step>) = match method {
        Method::Zoo { params, fusion } => {
            let input = if params.proxy == Proxy::LastMlp {
                inp.pre_mlp.ok_or_else(|| {
                    Error::Other("the last-MLP proxy needs the encoder's pre-MLP states".into())
                })?
            } else {
                inp.pre_ln
            };
            let s = zoo::sensitivity_with(inp.model, input, params, inp.zoo_plans);
            let s: Vec<f64> = read_floats(s).await?.into_iter().map(|x| x as f64).collect();
            if params.proxy == Proxy::Linear || zoo::is_degenerate(&s) {
                warnings.push(
                    "ZOO sensitivity is constant on this proxy (the connector is linear): its ranking \
                     is rounding noise"
                        .to_string(),
                );
            }
            let steps = per_budget(mode, tiles, n, |r| select::sads_order(&s[r.clone()], &cos_of(&z, d, &r), *fusion));
            (s, steps)
        }
        Method::DivPrune | Method::InfoHorizon { .. } => {
            if let Method::InfoHorizon { deep_layer, deep_keep, seed } = method {
                let layers = inp.model.text.layers.len();
                let layer = deep_layer.unwrap_or((layers * 2) / 3);
                if layer >= layers {
                    return Err(Error::Other(format!("deep layer {layer} >= the model's {layers} layers")));
                }
                deep_drop = Some(DeepDrop { layer, keep: deep_keep.clamp(0.0, 1.0), seed: *seed });
            }
            let steps = per_budget(mode, tiles, n, |r| select::divprune_order(&cos_of(&z, d, &r), r.len()));
            (vec![f64::NAN; total], steps)
        }
        Method::PromptAware { core_share } => {
            let q = inp.question_ids.ok_or_else(|| Error::Other("prompt-aware needs the question".into()))?;
            let rel = scores::prompt_relevance(inp.model, &z, d, q).await?;
            let steps = per_budget(mode, tiles, n, |r| {
                select::prompt_aware_order(&rel[r.clone()], &cos_of(&z, d, &r), *core_share)
            });
            (rel, steps)
        }
        Method::Random { seed } => {
            let perm = rng::permutation(*seed, total);
            let steps = match mode {
                BudgetMode::Global => perm
                    .into_iter()
                    .map(|t| Step { token: t, score: f64::NAN, weight: 1.0, distance: f64::NAN })
                    .collect(),
                BudgetMode::PerTile => {
                    let per: Vec<Vec<Step>> = (0..tiles)
                        .map(|t| {
                            rng::permutation(seed.wrapping_add(t as u64), n)
                                .into_iter()
                                .map(|i| Step { token: i, score: f64::NAN, weight: 1.0, distance: f64::NAN })
                                .collect()
                        })
                        .collect();
                    interleave(&per, n)
                }
            };
            (vec![f64::NAN; total], steps)
        }
        Method::VisionZip { layer } => {
            let s = scores::attention_received(inp, *layer).await?;
            (s.clone(), per_budget(mode, tiles, n, |r| select::order_by_score(&s[r.clone()])))
        }
        Method::FastV { layer } => {
            let s = scores::fastv(inp, *layer).await?;
            (s.clone(), per_budget(mode, tiles, n, |r| select::order_by_score(&s[r.clone()])))
        }
        Method::FeatureNorm => {
            let s = scores::feature_norm(inp).await?;
            (s.clone(), per_budget(mode, tiles, n, |r| select::order_by_score(&s[r.clone()])))
        }
        Method::CdPruner { sign } => {
            let q = inp.question_ids.ok_or_else(|| Error::Other("cdpruner needs the question".into()))?;
            if q.is_empty() {
                return Err(Error::Prompt("the question is empty".into()));
            }
            let e: Vec<f64> =
                read_floats(inp.model.text.embed(q)).await?.into_iter().map(|v| v as f64).collect();
            // relevance normalised over the whole image, the kernel per tile or over everything
            let rel = cdpruner::relevance(&z, &e, d, *sign);
            let steps = per_budget(mode, tiles, n, |r| cdpruner::order(&rel[r.clone()], &cos_of(&z, d, &r)));
            (rel, steps)
        }
    };
    let order: Vec<usize> = steps.iter().map(|s| s.token).collect();
    debug_assert_eq!(order.len(), total);
    Ok(Ranking { method: method.name().to_string(), order, steps, scores, warnings, deep_drop })
}
