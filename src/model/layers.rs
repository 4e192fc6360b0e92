//! Small building blocks shared by the vision encoder and the decoder, with HF semantics.

use burn::module::{Module, Param};
use burn::nn::Linear;
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

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let (normed, _) = self.normalize(x);
        self.affine(normed)
    }

    /// (x - mean) / sqrt(var + eps) and 1 / sqrt(var + eps) (the pruning code needs both).
    pub fn normalize<const D: usize>(&self, x: Tensor<D>) -> (Tensor<D>, Tensor<D>) {
        let mean = x.clone().mean_dim(D - 1);
        let centered = x - mean;
        let var = centered.clone().square().mean_dim(D - 1);
        let inv_std = (var + self.eps).sqrt().recip();
        (centered * inv_std.clone(), inv_std)
    }

    pub fn affine<const D: usize>(&self, normed: Tensor<D>) -> Tensor<D> {
        normed * self.weight.val().unsqueeze::<D>() + self.bias.val().unsqueeze::<D>()
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
