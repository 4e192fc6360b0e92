//! The checkpoint's tensors as lists: the HF names and torch shapes a config describes (the
//! loader checks a file against it before reading anything, every missing or mis-shaped tensor
//! named at once; random checkpoints are written from it; tests/loader.rs checks it against
//! transformers' save_pretrained), and a model's values under those names (the built-in model's
//! save). Both walk the modules' one description of their tensors ([`super::walk`]).

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};

use super::vocab::VocabMatrix;
use super::walk::{Prefix, Visitor};
use super::Idefics3;
use crate::config::Idefics3Config;
use crate::error::{Error, Result};

/// Every tensor an Idefics3 checkpoint of this config holds: its HF name and torch shape, in the
/// order the loader reads them.
pub fn checkpoint_tensors(c: &Idefics3Config) -> Vec<(String, Vec<usize>)> {
    describe(c).tensors
}

fn describe(c: &Idefics3Config) -> Describe {
    let mut d = Describe { device: Device::flex(), tensors: Vec::new(), vocab: Vec::new() };
    Idefics3::walk(&mut d, c, None).expect("describing a config reads nothing and cannot fail");
    d
}

/// The model's tensors under their HF names and torch shapes (Linear weights [out, in], the patch
/// embedding as the conv kernel [hidden, channels, p, p]), in [`checkpoint_tensors`]' order: the
/// inverse of the load. Reads every parameter back from its device (natively synchronous).
pub fn model_tensors(model: &Idefics3, c: &Idefics3Config) -> Result<Vec<(String, Vec<usize>, Vec<f32>)>> {
    let mut s = Save { tensors: Vec::new() };
    Idefics3::walk(&mut s, c, Some(model))?;
    Ok(s.tensors)
}

/// Lists names and shapes; builds the modules from empty placeholders (nothing allocated).
struct Describe {
    device: Device,
    tensors: Vec<(String, Vec<usize>)>,
    /// The vocabulary matrices, which the loader can split into blocks of rows ([`super::vocab`]).
    vocab: Vec<String>,
}

impl Describe {
    fn empty<const D: usize>(&self) -> Tensor<D> {
        Tensor::from_data(TensorData::new(Vec::<f32>::new(), [0; D]), &self.device)
    }

    fn linear_of(&mut self, at: &Prefix, weight: Vec<usize>, d_out: usize, bias: bool) -> Linear {
        self.tensors.push((at.pp("weight").to_string(), weight));
        let bias = bias.then(|| {
            self.tensors.push((at.pp("bias").to_string(), vec![d_out]));
            Param::from_tensor(self.empty())
        });
        Linear { weight: Param::from_tensor(self.empty()), bias }
    }
}

impl Visitor for Describe {
    fn linear(&mut self, at: &Prefix, d_in: usize, d_out: usize, bias: bool, _: Option<&Linear>) -> Result<Linear> {
        Ok(self.linear_of(at, vec![d_out, d_in], d_out, bias))
    }

    fn patch_conv(&mut self, at: &Prefix, d_out: usize, ch: usize, p: usize, _: Option<&Linear>) -> Result<Linear> {
        Ok(self.linear_of(at, vec![d_out, ch, p, p], d_out, true))
    }

    fn tensor<const D: usize>(&mut self, name: &Prefix, shape: [usize; D], _: Option<&Param<Tensor<D>>>) -> Result<Param<Tensor<D>>> {
        self.tensors.push((name.to_string(), shape.to_vec()));
        Ok(Param::from_tensor(self.empty()))
    }

    fn vocab(&mut self, name: &Prefix, rows: usize, cols: usize, _: Option<&VocabMatrix>) -> Result<VocabMatrix> {
        self.tensors.push((name.to_string(), vec![rows, cols]));
        self.vocab.push(name.to_string());
        Ok(VocabMatrix { blocks: vec![Param::from_tensor(self.empty())] })
    }
}

/// Reads a model's values back in the file's layout; gives the model's own tensors back.
struct Save {
    tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

fn given<'t, T>(name: &Prefix, have: Option<&'t T>) -> Result<&'t T> {
    have.ok_or_else(|| Error::Other(format!("saving `{name}`: no model given")))
}

impl Save {
    /// `t` under `name`, which the walk says has `shape` (a model whose tensor differs is an
    /// error); `file`: a burn Linear weight [in, out], stored transposed with this torch shape.
    fn put<const D: usize>(&mut self, name: &Prefix, shape: Vec<usize>, t: Tensor<D>, file: Option<Vec<usize>>) -> Result<()> {
        if t.dims().to_vec() != shape {
            return Err(Error::Other(format!(
                "`{name}`: the model's tensor has shape {:?}, its config says {shape:?}",
                t.dims()
            )));
        }
        let v = values(t);
        let (shape, v) = match file {
            Some(file_shape) => (file_shape, crate::cpu::convert::transpose(&v, shape[0], shape[1])),
            None => (shape, v),
        };
        self.tensors.push((name.to_string(), shape, v));
        Ok(())
    }

    fn linear_of(&mut self, at: &Prefix, d_in: usize, d_out: usize, file: Vec<usize>, bias: bool, have: Option<&Linear>) -> Result<Linear> {
        let l = given(at, have)?;
        if l.bias.is_some() != bias {
            return Err(Error::Other(format!("`{at}`: the model's Linear and its config disagree on a bias")));
        }
        self.put(&at.pp("weight"), vec![d_in, d_out], l.weight.val(), Some(file))?;
        if let Some(b) = &l.bias {
            self.put(&at.pp("bias"), vec![d_out], b.val(), None)?;
        }
        Ok(l.clone())
    }
}

impl Visitor for Save {
    fn linear(&mut self, at: &Prefix, d_in: usize, d_out: usize, bias: bool, have: Option<&Linear>) -> Result<Linear> {
        self.linear_of(at, d_in, d_out, vec![d_out, d_in], bias, have)
    }

    fn patch_conv(&mut self, at: &Prefix, d_out: usize, ch: usize, p: usize, have: Option<&Linear>) -> Result<Linear> {
        self.linear_of(at, ch * p * p, d_out, vec![d_out, ch, p, p], true, have)
    }

    fn tensor<const D: usize>(&mut self, name: &Prefix, shape: [usize; D], have: Option<&Param<Tensor<D>>>) -> Result<Param<Tensor<D>>> {
        let t = given(name, have)?;
        self.put(name, shape.to_vec(), t.val(), None)?;
        Ok(t.clone())
    }

    fn vocab(&mut self, name: &Prefix, rows: usize, cols: usize, have: Option<&VocabMatrix>) -> Result<VocabMatrix> {
        let m = given(name, have)?;
        self.put(name, vec![rows, cols], m.full(), None)?;
        Ok(m.clone())
    }
}

fn size(bytes: u64) -> String {
    if bytes >= 1_000_000 {
        format!("{:.1} MB", bytes as f64 / 1e6)
    } else {
        format!("{bytes} bytes")
    }
}

/// A tensor that is split to fit a device: its name, its f32 size and the blocks it becomes.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Split {
    pub name: String,
    pub bytes: u64,
    pub blocks: usize,
}

/// Whether the model of config `c` fits a device whose buffers hold at most `max_bytes` each,
/// from the config alone (before downloading the weights): the f32 tensors larger than that which
/// get split (the vocabulary matrices), or an error naming the first tensor that cannot be.
pub fn device_fit(c: &Idefics3Config, max_bytes: u64) -> crate::error::Result<Vec<Split>> {
    let mut splits = Vec::new();
    let Describe { tensors, vocab, .. } = describe(c);
    for (name, shape) in tensors {
        let bytes = shape.iter().map(|&d| d as u64).product::<u64>() * 4;
        if bytes <= max_bytes {
            continue;
        }
        if !vocab.contains(&name) {
            return Err(crate::error::Error::Device(format!(
                "`{name}` ({shape:?}, {} in f32) is larger than this device's largest buffer \
                 ({}: min(maxStorageBufferBindingSize, maxBufferSize)); this model cannot run \
                 on it: choose the CPU backend or a smaller model",
                size(bytes),
                size(max_bytes)
            )));
        }
        let per = super::vocab::rows_per_block(&name, shape[0], shape[1], Some(max_bytes))?;
        splits.push(Split { name, bytes, blocks: shape[0].div_ceil(per) });
    }
    Ok(splits)
}
