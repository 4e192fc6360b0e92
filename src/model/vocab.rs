//! The decoder's two [vocab, hidden] matrices, `embed_tokens` and `lm_head`, in the checkpoint's
//! layout, held as blocks of vocabulary rows when one tensor would be larger than the device's
//! largest buffer binding (WebGPU's default maxStorageBufferBindingSize is 128 MiB; SmolVLM-500M's
//! f32 embed_tokens is 189 MB). The embedding lookup gathers from the block each id falls in; the
//! logits are the blocks' products concatenated. With one block both are the plain operations.

use burn::module::{Module, Param};
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::error::{Error, Result};
use crate::weights::WeightMap;

#[derive(Module, Debug)]
pub struct VocabMatrix {
    /// Row blocks [rows_b, hidden], in vocabulary order.
    pub blocks: Vec<Param<Tensor<2>>>,
}

/// Rows per block for a [vocab, hidden] f32 matrix under `max_bytes` per tensor (None: no limit,
/// one block). Errors when not even one row fits.
pub fn rows_per_block(name: &str, vocab: usize, hidden: usize, max_bytes: Option<u64>) -> Result<usize> {
    let row = (hidden * 4) as u64;
    match max_bytes {
        None => Ok(vocab.max(1)),
        Some(m) if m < row => Err(Error::Device(format!(
            "`{name}`: one row is {row} bytes, more than the device's largest buffer ({m} bytes)"
        ))),
        Some(m) => Ok(((m / row) as usize).clamp(1, vocab.max(1))),
    }
}

impl VocabMatrix {
    /// `name` ([vocab, hidden] in the file) in blocks of at most `max_bytes` of f32 each, each block
    /// converted and uploaded on its own.
    pub fn load(
        w: &WeightMap,
        name: &str,
        vocab: usize,
        hidden: usize,
        max_bytes: Option<u64>,
        device: &Device,
    ) -> Result<Self> {
        let per = rows_per_block(name, vocab, hidden, max_bytes)?;
        let mut blocks = Vec::new();
        let mut start = 0;
        while start < vocab {
            let end = (start + per).min(vocab);
            let v = w.f32_rows(name, &[vocab, hidden], start..end)?;
            blocks.push(Param::from_tensor(Tensor::from_data(TensorData::new(v, [end - start, hidden]), device)));
            start = end;
        }
        Ok(Self { blocks })
    }

    pub fn device(&self) -> Device {
        self.blocks[0].val().device()
    }

    pub fn vocab(&self) -> usize {
        self.blocks.iter().map(|b| b.val().dims()[0]).sum()
    }

    /// The whole matrix [vocab, hidden] (one tensor: for saving a small model).
    pub fn full(&self) -> Tensor<2> {
        match self.blocks.as_slice() {
            [one] => one.val(),
            many => Tensor::cat(many.iter().map(|b| b.val()).collect(), 0),
        }
    }

    /// Rows `ids` [n, hidden] (the embedding lookup).
    pub fn rows(&self, ids: &[u32]) -> Tensor<2> {
        let device = self.device();
        let index = |v: Vec<i64>| {
            let n = v.len();
            Tensor::<1, Int>::from_data(TensorData::new(v, [n]), &device)
        };
        if let [one] = self.blocks.as_slice() {
            return one.val().select(0, index(ids.iter().map(|&i| i as i64).collect()));
        }
        // gather from each block the ids it holds, then put the rows back in the ids' order
        let mut parts = Vec::new();
        let mut place = vec![0i64; ids.len()];
        let mut got = 0i64;
        let mut start = 0usize;
        for b in &self.blocks {
            let block = b.val();
            let end = start + block.dims()[0];
            let local: Vec<(usize, i64)> = ids
                .iter()
                .enumerate()
                .filter(|(_, &id)| (start..end).contains(&(id as usize)))
                .map(|(p, &id)| (p, (id as usize - start) as i64))
                .collect();
            if !local.is_empty() {
                for (k, &(p, _)) in local.iter().enumerate() {
                    place[p] = got + k as i64;
                }
                got += local.len() as i64;
                parts.push(block.select(0, index(local.into_iter().map(|(_, l)| l).collect())));
            }
            start = end;
        }
        assert_eq!(got as usize, ids.len(), "a token id beyond the vocabulary ({start} rows)");
        Tensor::cat(parts, 0).select(0, index(place))
    }

    /// `hidden` [.., hidden] times the matrix's transpose: [.., vocab] (the logits).
    pub fn project<const D: usize>(&self, hidden: Tensor<D>) -> Tensor<D> {
        let dims = hidden.dims();
        let d = dims[D - 1];
        let n = hidden.shape().num_elements() / d;
        let h = hidden.reshape([n, d]);
        // our product where the build has it (src/cpu/gemm.rs), else burn's on the transposed view
        let logits = |h: Tensor<2>, e: Tensor<2>| match crate::cpu::flex::matmul_t(h, &e) {
            Ok(y) => y,
            Err(h) => h.matmul(e.transpose()),
        };
        let out = match self.blocks.as_slice() {
            [one] => logits(h, one.val()),
            many => Tensor::cat(many.iter().map(|b| logits(h.clone(), b.val())).collect(), 1),
        };
        let mut od = dims;
        od[D - 1] = out.dims()[1];
        out.reshape(od)
    }
}
