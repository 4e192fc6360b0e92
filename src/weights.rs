//! Reading an HF `model.safetensors` from bytes (no filesystem in wasm).
//!
//! Tensors keep the checkpoint's names. bf16 / f16 / f32 are converted to f32 on the host (WGSL has
//! no bf16 and SwiftShader no f16). Every problem is an error that names the tensor: a missing one,
//! a wrong shape, an unsupported dtype, and (at [`WeightMap::finish`]) tensors nobody asked for.

use std::cell::RefCell;
use std::collections::BTreeSet;

use burn::tensor::{Device, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};

pub struct WeightMap<'a> {
    st: SafeTensors<'a>,
    used: RefCell<BTreeSet<String>>,
}

/// One entry of a safetensors header, read without safetensors' validation.
#[derive(serde::Deserialize)]
struct RawTensorInfo {
    dtype: Dtype,
    shape: Vec<usize>,
    data_offsets: (usize, usize),
}

/// safetensors says only "invalid shape, data type, or offset for tensor": find which tensor's dtype
/// and shape disagree with the byte range its offsets give it.
fn tensor_with_wrong_length(bytes: &[u8]) -> Option<String> {
    let n = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let end = 8usize.checked_add(usize::try_from(n).ok()?)?;
    let header: std::collections::BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(bytes.get(8..end)?).ok()?;
    header.into_iter().filter(|(name, _)| name != "__metadata__").find_map(|(name, v)| {
        let info: RawTensorInfo = serde_json::from_value(v).ok()?;
        let (s, e) = info.data_offsets;
        let want = info.shape.iter().try_fold(info.dtype.bitsize(), |a, &d| a.checked_mul(d)).map(|b| b / 8);
        (e >= s && want != Some(e - s)).then(|| {
            format!(
                "tensor `{name}` is {:?} of shape {:?}, which is {} bytes, but the file gives it {} \
                 bytes: its dtype or shape in the header is wrong, or the file is damaged",
                info.dtype,
                info.shape,
                want.map_or("too many".to_string(), |w| w.to_string()),
                e - s
            )
        })
    })
}

fn describe_safetensors_error(e: safetensors::SafeTensorError, bytes: &[u8]) -> Error {
    use safetensors::SafeTensorError as E;
    let len = bytes.len();
    let why = match e {
        E::HeaderTooSmall | E::HeaderTooLarge | E::InvalidHeaderLength => {
            "the file does not start with a safetensors header (is it a model.safetensors file?)"
                .to_string()
        }
        E::InvalidHeader(_) | E::InvalidHeaderDeserialization(_) => {
            "the safetensors header is not valid JSON (wrong or corrupted file)".to_string()
        }
        E::MetadataIncompleteBuffer | E::InvalidOffset(_) => format!(
            "the file is truncated: its header describes more data than the {len} bytes present \
             (an interrupted download?)"
        ),
        E::TensorInvalidInfo => tensor_with_wrong_length(bytes)
            .unwrap_or_else(|| format!("invalid safetensors file: {}", E::TensorInvalidInfo)),
        other => format!("invalid safetensors file: {other}"),
    };
    Error::Checkpoint(why)
}

impl<'a> WeightMap<'a> {
    pub fn new(bytes: &'a [u8]) -> Result<Self> {
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| describe_safetensors_error(e, bytes))?;
        Ok(Self { st, used: RefCell::new(BTreeSet::new()) })
    }

    pub fn contains(&self, name: &str) -> bool {
        self.st.tensor(name).is_ok()
    }

    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.st.names().into_iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    }

    /// Checks the file against the tensors a config describes (`model::tensors`), before anything
    /// is read: the first problem is told as reading would tell it, followed by how many more
    /// there are and their names.
    pub fn check(&self, expected: &[(String, Vec<usize>)]) -> Result<()> {
        let problems: Vec<String> = expected
            .iter()
            .filter_map(|(name, shape)| match self.st.tensor(name) {
                Err(_) => Some(format!("missing tensor `{name}` (expected shape {shape:?})")),
                Ok(v) if v.shape() != shape.as_slice() => Some(format!(
                    "tensor `{name}` has shape {:?}, the config expects {shape:?}",
                    v.shape()
                )),
                Ok(_) => None,
            })
            .collect();
        match problems.as_slice() {
            [] => Ok(()),
            [one] => Err(Error::Checkpoint(one.clone())),
            [first, rest @ ..] => {
                let shown: Vec<&str> = rest.iter().take(4).map(|s| s.as_str()).collect();
                Err(Error::Checkpoint(format!(
                    "{first}; and {} more problem(s) with the tensors config.json describes: {}{}",
                    rest.len(),
                    shown.join("; "),
                    if rest.len() > shown.len() { "; …" } else { "" }
                )))
            }
        }
    }

    /// The view of tensor `name`, checked against `shape`.
    fn view(&self, name: &str, shape: &[usize]) -> Result<safetensors::tensor::TensorView<'_>> {
        let view = self.st.tensor(name).map_err(|_| {
            Error::Checkpoint(format!("missing tensor `{name}` (expected shape {shape:?})"))
        })?;
        if view.shape() != shape {
            return Err(Error::Checkpoint(format!(
                "tensor `{name}` has shape {:?}, the config expects {shape:?}",
                view.shape()
            )));
        }
        Ok(view)
    }

    /// The tensor `name` as f32 values, checked against `shape`.
    pub fn f32_values(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let n = shape.first().copied().unwrap_or(1);
        self.f32_rows(name, shape, 0..n)
    }

    /// Rows `rows` (along the first dimension) of the tensor `name` as f32 values, checked against
    /// `shape`: only those rows are converted (a vocabulary block, without the whole matrix in f32).
    pub fn f32_rows(&self, name: &str, shape: &[usize], rows: std::ops::Range<usize>) -> Result<Vec<f32>> {
        let view = self.view(name, shape)?;
        let row_elems: usize = shape.iter().skip(1).product();
        let n_rows = shape.first().copied().unwrap_or(1);
        assert!(rows.start <= rows.end && rows.end <= n_rows, "rows {rows:?} of {n_rows}");
        let width = view.dtype().bitsize() / 8;
        let data = &view.data()[rows.start * row_elems * width..rows.end * row_elems * width];
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::BF16 => data
                .chunks_exact(2)
                .map(|b| f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16))
                .collect(),
            Dtype::F16 => data
                .chunks_exact(2)
                .map(|b| half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32())
                .collect(),
            other => {
                return Err(Error::Checkpoint(format!(
                    "tensor `{name}` has dtype {other:?}; only F32, BF16 and F16 are supported"
                )))
            }
        };
        self.used.borrow_mut().insert(name.to_string());
        Ok(values)
    }

    /// The tensor `name` on `device`, checked against `shape`.
    pub fn tensor<const D: usize>(
        &self,
        name: &str,
        shape: [usize; D],
        device: &Device,
    ) -> Result<Tensor<D>> {
        let values = self.f32_values(name, &shape)?;
        Ok(Tensor::from_data(TensorData::new(values, shape), device))
    }

    /// A Linear weight stored by PyTorch as [out, in], returned as burn's [in, out].
    pub fn linear_weight(
        &self,
        name: &str,
        d_in: usize,
        d_out: usize,
        device: &Device,
    ) -> Result<Tensor<2>> {
        let values = self.f32_values(name, &[d_out, d_in])?;
        let mut t = vec![0f32; values.len()];
        for o in 0..d_out {
            for i in 0..d_in {
                t[i * d_out + o] = values[o * d_in + i];
            }
        }
        Ok(Tensor::from_data(TensorData::new(t, [d_in, d_out]), device))
    }

    /// Errors if the checkpoint holds tensors that the model did not read.
    pub fn finish(self) -> Result<()> {
        let used = self.used.into_inner();
        let unused: Vec<String> =
            self.st.names().into_iter().filter(|n| !used.contains(*n)).map(|s| s.to_string()).collect();
        if unused.is_empty() {
            return Ok(());
        }
        let mut unused = unused;
        unused.sort();
        let shown: Vec<&str> = unused.iter().take(8).map(|s| s.as_str()).collect();
        Err(Error::Checkpoint(format!(
            "{} unexpected tensor(s) in the checkpoint, e.g. `{}`: the config does not describe this \
             file (wrong config.json, or not an Idefics3 checkpoint?)",
            unused.len(),
            shown.join("`, `")
        )))
    }
}
