//! Idefics3Connector: pixel shuffle (space-to-depth) then one bias-free Linear into the LLM.
//!
//! HF's channel order after the shuffle is [dh][dw][c]: output token t = hb * (n/s) + wb takes the
//! s x s patch block at rows s*hb.., cols s*wb.. (see `pixel_shuffle`).

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::Tensor;

use super::layers::linear;
use super::walk::{Prefix, Visitor};
use crate::config::Idefics3Config;
use crate::error::Result;

#[derive(Module, Debug)]
pub struct Connector {
    /// `modality_projection.proj`: [vision_hidden * s^2, text_hidden].
    pub proj: Linear,
    #[module(skip)]
    pub scale_factor: usize,
}

/// [tiles, n*n, c] -> [tiles, (n/s)^2, s*s*c], exactly HF Idefics3Connector.pixel_shuffle.
pub fn pixel_shuffle(x: Tensor<3>, s: usize) -> Tensor<3> {
    let [t, seq, c] = x.dims();
    let n = (seq as f64).sqrt() as usize;
    assert_eq!(n * n, seq, "pixel_shuffle needs a square patch grid");
    let m = n / s;
    // x[t, hb*s+dh, wb*s+dw, c] -> out[t, hb*m+wb, (dh*s+dw)*c + c]
    x.reshape([t, m, s, m, s * c])
        .permute([0, 1, 3, 2, 4])
        .reshape([t, m * m, s * s * c])
}

impl Connector {
    /// `{at}.modality_projection.proj`, a bias-free Linear [d_v * s^2 -> d_t].
    pub fn walk<V: Visitor>(v: &mut V, at: &Prefix, cfg: &Idefics3Config, this: Option<&Self>) -> Result<Self> {
        let s = cfg.scale_factor;
        let d_in = cfg.vision_config.hidden_size * s * s;
        let at = at.pp("modality_projection").pp("proj");
        let proj = v.linear(&at, d_in, cfg.text_config.hidden_size, false, this.map(|c| &c.proj))?;
        Ok(Self { proj, scale_factor: s })
    }

    /// Post-LN vision states [tiles, patches, d_v] -> LLM input embeddings [tiles, tokens, d_t].
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        linear(&self.proj, pixel_shuffle(x, self.scale_factor))
    }
}
