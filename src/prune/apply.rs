//! Applying a ranking's budget to the prompt: which `<image>` positions stay at the input, and
//! which visual positions the information horizon's deep drop keeps inside the decoder.

use super::rng::permutation;
use super::DeepDrop;
use crate::model::LayerDrop;

/// The prompt with only the kept `<image>` positions: `keep` holds ascending visual-token indices.
/// Structural tokens (tile wrappers, row/col markers, the global-image marker) always stay; the
/// kept tokens keep their order and the positions are contiguous.
pub fn prune_prompt(ids: &[u32], image_token_id: u32, keep: &[usize]) -> Vec<u32> {
    kept_positions(ids, image_token_id, keep).into_iter().map(|p| ids[p]).collect()
}

/// The information horizon's deep drop for a pruned prompt: all text positions and a seeded random
/// `keep` fraction of the visual positions.
pub fn deep_layer_drop(pruned_ids: &[u32], image_token_id: u32, drop: &DeepDrop) -> LayerDrop {
    let vis: Vec<usize> =
        pruned_ids.iter().enumerate().filter(|(_, &t)| t == image_token_id).map(|(p, _)| p).collect();
    let n_keep = ((vis.len() as f64) * drop.keep).round() as usize;
    let mut chosen: Vec<usize> = permutation(drop.seed, vis.len()).into_iter().take(n_keep).collect();
    chosen.sort_unstable();
    let kept_vis: std::collections::HashSet<usize> = chosen.into_iter().map(|i| vis[i]).collect();
    let keep = (0..pruned_ids.len())
        .filter(|p| pruned_ids[*p] != image_token_id || kept_vis.contains(p))
        .collect();
    LayerDrop { layer: drop.layer, keep }
}

/// Which RoPE positions the tokens of a pruned prompt get.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Positions {
    /// 0..L-1 over the pruned prompt: what the seeds' code does (position_ids = None).
    #[default]
    Renumber,
    /// Each token keeps its position in the full prompt (gaps where tokens were pruned); the
    /// answer continues after the full prompt's last position.
    Keep,
}

impl Positions {
    pub const NAMES: &'static [&'static str] = &["renumber", "keep"];

    pub fn parse(s: &str) -> crate::error::Result<Self> {
        match s {
            "renumber" | "" => Ok(Self::Renumber),
            "keep" => Ok(Self::Keep),
            other => Err(crate::error::Error::Other(format!(
                "unknown positions {other:?}: choose \"renumber\" or \"keep\""
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Renumber => "renumber",
            Self::Keep => "keep",
        }
    }
}

/// The position in the full prompt `ids` of each token that [`prune_prompt`] keeps.
pub fn kept_positions(ids: &[u32], image_token_id: u32, keep: &[usize]) -> Vec<usize> {
    let mut v = 0usize;
    let mut k = 0usize;
    let mut out = Vec::with_capacity(ids.len());
    for (p, &id) in ids.iter().enumerate() {
        if id == image_token_id {
            if k < keep.len() && keep[k] == v {
                out.push(p);
                k += 1;
            }
            v += 1;
        } else {
            out.push(p);
        }
    }
    out
}
