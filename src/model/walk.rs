//! The checkpoint's tensor names, written once. Each module has one `walk`: it names its tensors
//! with a [`Prefix`] that composes the way candle-transformers' `vb.pp("...")` does, declares each
//! one's layout in the file (a torch Linear, a patch conv, a vocabulary matrix, a plain tensor),
//! and builds itself from what a [`Visitor`] gives back. Three visitors walk the same description:
//! - [`Load`]: reads the tensors from a checkpoint ([`crate::weights::WeightMap`]);
//! - `tensors::Describe`: lists HF names and torch shapes without reading anything (the table a
//!   file is checked against before loading, random checkpoints, the device-fit check);
//! - `tensors::Save`: reads an existing model back under its HF names (the built-in model's save),
//!   given the model as `this`.

use std::fmt::Display;

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};

use super::vocab::VocabMatrix;
use crate::error::Result;
use crate::weights::WeightMap;

/// A dotted tensor-name prefix: `Prefix::root().pp("model").pp("text_model").pp(3)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Prefix(String);

impl Prefix {
    pub fn root() -> Self {
        Self::default()
    }

    /// This prefix with `part` appended (candle's `pp`, "push prefix").
    pub fn pp(&self, part: impl Display) -> Self {
        if self.0.is_empty() {
            Self(part.to_string())
        } else {
            Self(format!("{}.{part}", self.0))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a walk does at each tensor. `have` is the model's own value when the walk goes over an
/// existing model (saving), None when it builds one. Shapes are torch's, as in the file.
pub trait Visitor {
    /// A torch `nn.Linear` at `at`: `{at}.weight` [d_out, d_in] and, when `bias`, `{at}.bias`
    /// [d_out]; burn's Linear holds the weight as [d_in, d_out].
    fn linear(&mut self, at: &Prefix, d_in: usize, d_out: usize, bias: bool, have: Option<&Linear>) -> Result<Linear>;

    /// A conv2d whose stride is its kernel (the patch embedding): `{at}.weight` [d_out, channels,
    /// p, p] and `{at}.bias` [d_out], held as a Linear [channels * p * p, d_out] over patches
    /// flattened in (channel, ky, kx) order.
    fn patch_conv(&mut self, at: &Prefix, d_out: usize, channels: usize, p: usize, have: Option<&Linear>) -> Result<Linear>;

    /// A tensor stored as it is used (norm gains and biases, position embeddings).
    fn tensor<const D: usize>(&mut self, name: &Prefix, shape: [usize; D], have: Option<&Param<Tensor<D>>>) -> Result<Param<Tensor<D>>>;

    /// A [rows, cols] vocabulary matrix (`embed_tokens`, `lm_head`), held in row blocks where the
    /// device needs it ([`super::vocab`]).
    fn vocab(&mut self, name: &Prefix, rows: usize, cols: usize, have: Option<&VocabMatrix>) -> Result<VocabMatrix>;

    /// Whether the source holds `name`, for a tensor a checkpoint may or may not have (a tied
    /// model's `lm_head`). Only a file can say; a description lists what the config requires.
    fn holds(&self, _name: &Prefix) -> bool {
        false
    }
}

/// Builds a model from a checkpoint.
pub struct Load<'w, 'a> {
    pub weights: &'w WeightMap<'a>,
    pub device: &'w Device,
    /// The device's largest buffer, in bytes (the vocabulary matrices are split to fit).
    pub max_tensor_bytes: Option<u64>,
}

impl Visitor for Load<'_, '_> {
    fn linear(&mut self, at: &Prefix, d_in: usize, d_out: usize, bias: bool, _: Option<&Linear>) -> Result<Linear> {
        let weight = self.weights.linear_weight(at.pp("weight").as_str(), d_in, d_out, self.device)?;
        let bias = if bias { Some(self.tensor(&at.pp("bias"), [d_out], None)?) } else { None };
        Ok(Linear { weight: Param::from_tensor(weight), bias })
    }

    fn patch_conv(&mut self, at: &Prefix, d_out: usize, ch: usize, p: usize, _: Option<&Linear>) -> Result<Linear> {
        // [d_out, c, p, p] in the file: flatten the kernel to (c, ky, kx) and transpose
        let conv = self.weights.f32_values(at.pp("weight").as_str(), &[d_out, ch, p, p])?;
        let k = ch * p * p;
        let t = crate::cpu::convert::transpose(&conv, d_out, k);
        let weight = Tensor::from_data(TensorData::new(t, [k, d_out]), self.device);
        let bias = self.tensor(&at.pp("bias"), [d_out], None)?;
        Ok(Linear { weight: Param::from_tensor(weight), bias: Some(bias) })
    }

    fn tensor<const D: usize>(&mut self, name: &Prefix, shape: [usize; D], _: Option<&Param<Tensor<D>>>) -> Result<Param<Tensor<D>>> {
        Ok(Param::from_tensor(self.weights.tensor(name.as_str(), shape, self.device)?))
    }

    fn vocab(&mut self, name: &Prefix, rows: usize, cols: usize, _: Option<&VocabMatrix>) -> Result<VocabMatrix> {
        VocabMatrix::load(self.weights, name.as_str(), rows, cols, self.max_tensor_bytes, self.device)
    }

    fn holds(&self, name: &Prefix) -> bool {
        self.weights.contains(name.as_str())
    }
}
