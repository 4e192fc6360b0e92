//! Per-token scores of the baselines: attention received in the vision encoder (VisionZip-style),
//! attention of the last prompt token in the LLM (FastV), relevance to the prompt (ZSPAPrune),
//! and the feature norm.

use burn::tensor::Tensor;

use super::PruneInputs;
use crate::error::{Error, Result};
use crate::readback::read_floats;
use crate::model::{pixel_shuffle, ForwardOptions, Idefics3};

/// Sums a per-patch quantity [tiles, patches] over each visual token's s x s patches.
fn per_token(x: Tensor<2>, s: usize) -> Tensor<1> {
    let [t, p] = x.dims();
    let y = pixel_shuffle(x.reshape([t, p, 1]), s); // [t, n, s*s]
    let n = y.dims()[1];
    y.sum_dim(2).reshape([t * n])
}

/// VisionZip-style dominance: the mean attention each patch receives (SigLIP has no CLS token),
/// summed over a token's patches. `layer` None takes the last layer provided.
pub async fn attention_received(inp: &PruneInputs<'_>, layer: Option<usize>) -> Result<Vec<f64>> {
    let att = match layer {
        None => inp.vision_attentions.last(),
        Some(layer) => inp.vision_attentions.iter().find(|(l, _)| *l == layer),
    }
    .ok_or_else(|| {
        Error::Other("VisionZip needs the vision attention maps: encode the image with them".into())
    })?;
    let [t, p, _] = att.1.dims();
    let received = att.1.clone().mean_dim(1).reshape([t, p]);
    let v = read_floats(per_token(received, inp.model.connector.scale_factor)).await?;
    Ok(v.into_iter().map(|x| x as f64).collect())
}

/// L2 norm of each token's encoder output (the s*s patches before post_layernorm).
pub async fn feature_norm(inp: &PruneInputs<'_>) -> Result<Vec<f64>> {
    let x = pixel_shuffle(inp.pre_ln.clone(), inp.model.connector.scale_factor);
    let [t, n, _] = x.dims();
    let v = read_floats(x.square().sum_dim(2).sqrt().reshape([t * n])).await?;
    Ok(v.into_iter().map(|x| x as f64).collect())
}

/// The root mean square over each token's s x s patches of 1 / sigma, sigma the standard deviation
/// (biased, + eps) post_layernorm divides each patch by. A LayerNorm's Jacobian scales with
/// 1 / sigma, so this is what ZOO's sensitivity through the post-ln proxy predicts (README: "What
/// ZOO's sensitivity measures").
pub async fn inv_sigma_rms(inp: &PruneInputs<'_>) -> Result<Vec<f64>> {
    let s = inp.model.connector.scale_factor;
    let eps = inp.model.vision.post_layernorm.eps;
    let [t, p, _] = inp.pre_ln.dims();
    let var = inp.pre_ln.clone().var_bias(2).reshape([t, p]);
    let inv = var.add_scalar(eps).recip();
    let v = read_floats(per_token(inv, s).div_scalar((s * s) as f64).sqrt()).await?;
    Ok(v.into_iter().map(|x| x as f64).collect())
}

/// Cosine of each projected token with the mean input embedding of the question's tokens.
pub async fn prompt_relevance(model: &Idefics3, z: &[f64], d: usize, question: &[u32]) -> Result<Vec<f64>> {
    if question.is_empty() {
        return Err(Error::Prompt("the question is empty".into()));
    }
    let e = read_floats(model.text.embed(question).mean_dim(0)).await?;
    let en = e.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt().max(1e-12);
    Ok(z.chunks(d)
        .map(|row| {
            let dot: f64 = row.iter().zip(&e).map(|(&a, &b)| a * b as f64).sum();
            let rn = row.iter().map(|&x| x * x).sum::<f64>().sqrt().max(1e-12);
            dot / (rn * en)
        })
        .collect())
}

/// FastV: run the LLM over the full prompt up to `layer` and take the head-averaged attention of
/// the last prompt token over the image positions.
pub async fn fastv(inp: &PruneInputs<'_>, layer: usize) -> Result<Vec<f64>> {
    let ids = inp.prompt_ids.ok_or_else(|| Error::Other("FastV needs the prompt".into()))?;
    let layers = inp.model.text.layers.len();
    if layer >= layers {
        return Err(Error::Other(format!("FastV layer {layer} >= the model's {layers} layers")));
    }
    let [t, n, d] = inp.features.dims();
    let embeds = inp.model.merge_embeds(ids, inp.image_token_id, Some(inp.features.clone().reshape([t * n, d])))?;
    let mut cache = inp.model.text.new_cache();
    let opts = ForwardOptions { last_query_attention_at: Some(layer), stop_after_layer: Some(layer), ..Default::default() };
    let out = inp.model.text.forward(embeds, &mut cache, &opts);
    let att = read_floats(out.last_query_attention.expect("attention requested")).await?;
    Ok(ids
        .iter()
        .zip(att)
        .filter(|(&id, _)| id == inp.image_token_id)
        .map(|(_, a)| a as f64)
        .collect())
}
