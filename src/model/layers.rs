//! Small building blocks shared by the vision encoder and the decoder, with HF semantics.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::activation::sigmoid;
use burn::tensor::module::layer_norm;
use burn::tensor::{Device, Tensor};

use crate::error::Result;
use crate::weights::WeightMap;

/// `{prefix}.weight` ([out, in] in the file) and, if `bias`, `{prefix}.bias`.
pub fn load_linear(
    w: &WeightMap,
    prefix: &str,
    d_in: usize,
    d_out: usize,
    bias: bool,
    device: &Device,
) -> Result<Linear> {
    let weight = w.linear_weight(&format!("{prefix}.weight"), d_in, d_out, device)?;
    let bias = if bias {
        Some(Param::from_tensor(w.tensor(&format!("{prefix}.bias"), [d_out], device)?))
    } else {
        None
    };
    Ok(Linear { weight: Param::from_tensor(weight), bias })
}

/// torch.nn.LayerNorm over the last dimension (biased variance).
#[derive(Module, Debug)]
pub struct LayerNorm {
    pub weight: Param<Tensor<1>>,
    pub bias: Param<Tensor<1>>,
    #[module(skip)]
    pub eps: f64,
}

impl LayerNorm {
    pub fn load(w: &WeightMap, prefix: &str, d: usize, eps: f64, device: &Device) -> Result<Self> {
        Ok(Self {
            weight: Param::from_tensor(w.tensor(&format!("{prefix}.weight"), [d], device)?),
            bias: Param::from_tensor(w.tensor(&format!("{prefix}.bias"), [d], device)?),
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
    pub fn load(w: &WeightMap, name: &str, d: usize, eps: f64, device: &Device) -> Result<Self> {
        Ok(Self { weight: Param::from_tensor(w.tensor(name, [d], device)?), eps })
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let rms = (x.clone().square().mean_dim(D - 1) + self.eps).sqrt().recip();
        x * rms * self.weight.val().unsqueeze::<D>()
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
