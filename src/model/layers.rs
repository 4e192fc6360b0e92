//! Small building blocks shared by the vision encoder and the decoder, with HF semantics.

use burn::module::{Module, Param};
use burn::tensor::activation::sigmoid;
use burn::tensor::module::layer_norm;
use burn::tensor::Tensor;

use super::walk::{Prefix, Visitor};
use crate::error::Result;

/// torch.nn.LayerNorm over the last dimension (biased variance).
#[derive(Module, Debug)]
pub struct LayerNorm {
    pub weight: Param<Tensor<1>>,
    pub bias: Param<Tensor<1>>,
    #[module(skip)]
    pub eps: f64,
}

impl LayerNorm {
    /// `{at}.weight` and `{at}.bias`, [d] each.
    pub fn walk<V: Visitor>(v: &mut V, at: &Prefix, d: usize, eps: f64, this: Option<&Self>) -> Result<Self> {
        Ok(Self {
            weight: v.tensor(&at.pp("weight"), [d], this.map(|s| &s.weight))?,
            bias: v.tensor(&at.pp("bias"), [d], this.map(|s| &s.bias))?,
            eps,
        })
    }

    /// The backend's fused LayerNorm (one pass over a row instead of ten tensor ops).
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        layer_norm(x, self.weight.val(), Some(self.bias.val()), self.eps)
    }
}

/// LlamaRMSNorm: x / sqrt(mean(x^2) + eps) * weight.
#[derive(Module, Debug)]
pub struct RmsNorm {
    pub weight: Param<Tensor<1>>,
    #[module(skip)]
    pub eps: f64,
}

impl RmsNorm {
    /// `{at}.weight`, [d].
    pub fn walk<V: Visitor>(v: &mut V, at: &Prefix, d: usize, eps: f64, this: Option<&Self>) -> Result<Self> {
        Ok(Self { weight: v.tensor(&at.pp("weight"), [d], this.map(|s| &s.weight))?, eps })
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let rms = (x.clone().square().mean_dim(D - 1) + self.eps).sqrt().recip();
        x * rms * self.weight.val().unsqueeze::<D>()
    }
}

/// A torch-style Linear: on flex in the browser's SIMD builds our product with the bias added as
/// it is written (`cpu::flex::linear`), else burn's `Linear::forward`.
pub fn linear<const D: usize>(l: &burn::nn::Linear, x: Tensor<D>) -> Tensor<D> {
    match crate::cpu::flex::linear(l, x) {
        Ok(y) => y,
        Err(x) => l.forward(x),
    }
}

/// gelu with the tanh approximation (`gelu_pytorch_tanh`), written as x * sigmoid(2u) with
/// u = sqrt(2/pi) (x + 0.044715 x^3), since 0.5 (1 + tanh u) = sigmoid(2u): six elementwise passes
/// and one exp per element, where burn's `gelu_approximate` takes eight with a powf and a tanh
/// (together ~30 % of a SigLIP tile's time on flex before this).
pub fn gelu_tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    const C: f64 = 2.0 * 0.797_884_560_802_865_4; // 2 sqrt(2/pi)
    let t = x.clone().square() * (0.044715 * C) + C; // C (1 + 0.044715 x^2)
    let z = x.clone() * t; // 2u
    x * sigmoid(z)
}
