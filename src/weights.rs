//! Reading an HF `model.safetensors` from bytes (no filesystem in wasm), or through a reader of
//! byte ranges: in the browser the downloaded file stays in JavaScript and only the tensor being
//! converted is copied into the wasm memory (a whole-file copy there would add the file's size to
//! the page's peak memory).
//!
//! Tensors keep the checkpoint's names. bf16 / f16 / f32 are converted to f32 on the host (WGSL has
//! no bf16 and SwiftShader no f16). Every problem is an error that names the tensor: a missing one,
//! a wrong shape, an unsupported dtype, and (at [`WeightMap::finish`]) tensors nobody asked for.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use burn::tensor::{Device, Tensor, TensorData};
use safetensors::tensor::Metadata;
use safetensors::{Dtype, SafeTensors};

use crate::cpu::convert::{widen_into, Source};
use crate::error::{Error, Result};

/// Reads `len` bytes of the file at `offset`.
pub type RangeReader<'a> = Box<dyn Fn(usize, usize) -> Result<Vec<u8>> + 'a>;

enum Data<'a> {
    Bytes(&'a [u8]),
    Reader(RangeReader<'a>),
}

/// A tensor's entry: dtype, shape and where its bytes start in the file (the header checked that
/// they fit its dtype and shape).
struct Entry {
    dtype: Dtype,
    shape: Vec<usize>,
    start: usize,
}

pub struct WeightMap<'a> {
    entries: BTreeMap<String, Entry>,
    data: Data<'a>,
    used: RefCell<BTreeSet<String>>,
}

/// The entries of a validated header, offsets made absolute (past the 8-byte length and the header).
fn entries(header_len: usize, metadata: &Metadata) -> BTreeMap<String, Entry> {
    metadata
        .tensors()
        .into_iter()
        .map(|(name, info)| {
            let base = 8 + header_len;
            (name, Entry { dtype: info.dtype, shape: info.shape.clone(), start: base + info.data_offsets.0 })
        })
        .collect()
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
        let (n, metadata) = SafeTensors::read_metadata(bytes)
            .map_err(|e| describe_safetensors_error(e, bytes))?;
        Ok(Self { entries: entries(n, &metadata), data: Data::Bytes(bytes), used: RefCell::new(BTreeSet::new()) })
    }

    /// A file of `file_len` bytes read through `read`, from its beginning `head` (at least the
    /// 8-byte length and the header; more is ignored). The header is checked as [`Self::new`]
    /// checks a whole file, with the same messages.
    pub fn from_reader(head: &[u8], file_len: usize, read: RangeReader<'a>) -> Result<Self> {
        let n = header_len(head)?;
        let Some(header) = head.get(8..8 + n) else {
            return Err(if file_len < 8 + n {
                describe_safetensors_error(safetensors::SafeTensorError::InvalidHeaderLength, head)
            } else {
                Error::Checkpoint(format!("give the first {} bytes of the file (its header)", 8 + n))
            });
        };
        // Parsing validates the header as safetensors does (byte ranges in order, without gaps,
        // each the size its dtype and shape need); what is left is the file's size.
        let metadata: Metadata = serde_json::from_slice(header).map_err(|e| {
            Error::Checkpoint(if e.is_data() {
                // a byte range that does not fit its tensor is named; other layout errors as safetensors says them
                tensor_with_wrong_length(head).unwrap_or_else(|| format!("invalid safetensors header: {e}"))
            } else {
                "the safetensors header is not valid JSON (wrong or corrupted file)".into()
            })
        })?;
        let data_len = file_len.saturating_sub(8 + n);
        let want = metadata.data_len();
        if want != data_len {
            let len = file_len;
            return Err(Error::Checkpoint(if want > data_len {
                format!(
                    "the file is truncated: its header describes more data than the {len} bytes present \
                     (an interrupted download?)"
                )
            } else {
                format!("invalid safetensors file: {} bytes after the described data", data_len - want)
            }));
        }
        let entries = entries(n, &metadata);
        Ok(Self { entries, data: Data::Reader(read), used: RefCell::new(BTreeSet::new()) })
    }

    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    pub fn names(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }

    /// Bytes `range` (relative to the tensor's own bytes) of `e`.
    fn bytes(&self, e: &Entry, range: std::ops::Range<usize>) -> Result<Cow<'_, [u8]>> {
        let (s, t) = (e.start + range.start, e.start + range.end);
        match &self.data {
            Data::Bytes(b) => Ok(Cow::Borrowed(&b[s..t])),
            Data::Reader(read) => {
                let v = read(s, t - s)?;
                if v.len() != t - s {
                    return Err(Error::Checkpoint(format!(
                        "reading bytes {s}..{t} of the file gave {} bytes (was the file changed while loading?)",
                        v.len()
                    )));
                }
                Ok(Cow::Owned(v))
            }
        }
    }

    /// Checks the file against the tensors a config describes (`model::tensors`), before anything
    /// is read: the first problem is told as reading would tell it, followed by how many more
    /// there are and their names.
    pub fn check(&self, expected: &[(String, Vec<usize>)]) -> Result<()> {
        let problems: Vec<String> = expected
            .iter()
            .filter_map(|(name, shape)| match self.entries.get(name) {
                None => Some(format!("missing tensor `{name}` (expected shape {shape:?})")),
                Some(e) if e.shape != *shape => Some(format!(
                    "tensor `{name}` has shape {:?}, the config expects {shape:?}",
                    e.shape
                )),
                Some(_) => None,
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

    /// The entry of tensor `name`, checked against `shape`.
    fn entry(&self, name: &str, shape: &[usize]) -> Result<&Entry> {
        let e = self.entries.get(name).ok_or_else(|| {
            Error::Checkpoint(format!("missing tensor `{name}` (expected shape {shape:?})"))
        })?;
        if e.shape != shape {
            return Err(Error::Checkpoint(format!(
                "tensor `{name}` has shape {:?}, the config expects {shape:?}",
                e.shape
            )));
        }
        Ok(e)
    }

    /// The tensor `name` as f32 values, checked against `shape`.
    pub fn f32_values(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let n = shape.first().copied().unwrap_or(1);
        self.f32_rows(name, shape, 0..n)
    }

    /// Rows `rows` (along the first dimension) of the tensor `name` as f32 values, checked against
    /// `shape`: only those rows are converted (a vocabulary block, without the whole matrix in f32).
    pub fn f32_rows(&self, name: &str, shape: &[usize], rows: std::ops::Range<usize>) -> Result<Vec<f32>> {
        let e = self.entry(name, shape)?;
        let row_elems: usize = shape.iter().skip(1).product();
        let n_rows = shape.first().copied().unwrap_or(1);
        assert!(rows.start <= rows.end && rows.end <= n_rows, "rows {rows:?} of {n_rows}");
        let from = source(e, name)?;
        let width = from.width();
        // converted in pieces of at most 4 MiB: through a reader, only a piece is copied at a time
        let (from_byte, to) = (rows.start * row_elems * width, rows.end * row_elems * width);
        // zeros from the allocator (fresh pages, untouched: no serial memset), faulted in by the
        // parallel widening
        let mut values = vec![0f32; (to - from_byte) / width];
        let piece = match self.data {
            // bytes at hand: one pass over the whole range (converted in parallel pieces)
            Data::Bytes(_) => usize::MAX,
            Data::Reader(_) => READ_PIECE / (width * 4) * (width * 4),
        };
        let mut at = from_byte;
        while at < to {
            let next = at.saturating_add(piece).min(to);
            let data = self.bytes(e, at..next)?;
            let out = (at - from_byte) / width;
            widen_into(&data, from, &mut values[out..out + (next - at) / width]);
            at = next;
        }
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

    /// A Linear weight stored by PyTorch as [out, in], returned as burn's [in, out], transposed
    /// once here (blocked, in parallel). Keeping [out, in] and multiplying by a transposed view was
    /// measured on flex (2026-12-02, 2 threads): decoding fell from ~30 to 2.5 tok/s, gemm's
    /// one-row products being slow on a column-major right-hand side.
    pub fn linear_weight(
        &self,
        name: &str,
        d_in: usize,
        d_out: usize,
        device: &Device,
    ) -> Result<Tensor<2>> {
        let e = self.entry(name, &[d_out, d_in])?;
        let from = source(e, name)?;
        let row_bytes = d_in * from.width();
        // zeroed by the allocator (fresh pages), then every value written once, in place: no
        // f32 copy in [out, in] first (a profile of the native load, 2026-12-04: 45 % of its CPU
        // time in the kernel faulting and zeroing pages, that transient copy among them; asking
        // for huge pages (madvise) saved 3 % more, within the noise: not kept)
        let mut t = vec![0f32; d_in * d_out];
        let piece_rows = match self.data {
            Data::Bytes(_) => d_out.max(1),
            Data::Reader(_) => (READ_PIECE / row_bytes.max(1)).max(1),
        };
        let mut r = 0;
        while r < d_out {
            let next = (r + piece_rows).min(d_out);
            let data = self.bytes(e, r * row_bytes..next * row_bytes)?;
            crate::cpu::convert::widen_transposed(&data, from, r, d_out, d_in, &mut t);
            r = next;
        }
        self.used.borrow_mut().insert(name.to_string());
        Ok(Tensor::from_data(TensorData::new(t, [d_in, d_out]), device))
    }

    /// Errors if the checkpoint holds tensors that the model did not read.
    pub fn finish(self) -> Result<()> {
        let used = self.used.into_inner();
        let unused: Vec<String> = self.entries.keys().filter(|n| !used.contains(*n)).cloned().collect();
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

/// The header's length from the file's first 8 bytes, checked as safetensors checks it.
/// The file's own `__metadata__` strings (safetensors' free-form header entry: PyTorch writes
/// `format: pt`; [`crate::random_weights`] marks its checkpoints `weights: random`), read from its
/// beginning `head`; empty when the header has none or cannot be read (the load says why).
pub fn file_metadata(head: &[u8]) -> std::collections::BTreeMap<String, String> {
    let header = header_len(head).ok().and_then(|n| head.get(8..8 + n));
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(rename = "__metadata__", default)]
        metadata: std::collections::BTreeMap<String, String>,
    }
    header.and_then(|h| serde_json::from_slice::<Head>(h).ok()).map(|h| h.metadata).unwrap_or_default()
}

fn header_len(head: &[u8]) -> Result<usize> {
    let Some(b) = head.get(..8) else {
        return Err(describe_safetensors_error(safetensors::SafeTensorError::HeaderTooSmall, head));
    };
    let n = u64::from_le_bytes(b.try_into().expect("8 bytes"));
    match usize::try_from(n) {
        Ok(n) if n <= 100_000_000 => Ok(n),
        _ => Err(describe_safetensors_error(safetensors::SafeTensorError::HeaderTooLarge, head)),
    }
}

/// Bytes asked of a reader at a time (a piece of a tensor; whole rows for a Linear weight).
const READ_PIECE: usize = 4 << 20;

/// The element type of entry `e` (tensor `name`) as the converter knows it.
fn source(e: &Entry, name: &str) -> Result<Source> {
    match e.dtype {
        Dtype::F32 => Ok(Source::F32),
        Dtype::BF16 => Ok(Source::BF16),
        Dtype::F16 => Ok(Source::F16),
        other => Err(Error::Checkpoint(format!("tensor `{name}` has dtype {other:?}; only F32, BF16 and F16 are supported"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::TensorView;

    #[test]
    fn rows_read_in_pieces_land_where_they_belong() {
        // A bf16 tensor of more than two READ_PIECEs: through a reader its rows come in several
        // pieces, each widened into its own place of the output. Rows 3..rows-2 (not piece
        // aligned) through the reader and from the bytes, against each value widened on its own.
        let (rows, cols) = (READ_PIECE / 2 / 512 * 2 + 37, 512);
        let bits: Vec<u16> = (0..rows * cols).map(|i| (i as u32).wrapping_mul(2654435761).rotate_left(7) as u16 & 0x7f7f).collect();
        let raw: Vec<u8> = bits.iter().flat_map(|b| b.to_le_bytes()).collect();
        let file = safetensors::serialize([("w", TensorView::new(Dtype::BF16, vec![rows, cols], &raw).unwrap())], None).unwrap();
        let want: Vec<f32> = bits[3 * cols..(rows - 2) * cols].iter().map(|&b| half::bf16::from_bits(b).to_f32()).collect();
        let head = 8 + u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
        let calls = std::cell::Cell::new(0);
        let reader = WeightMap::from_reader(
            &file[..head],
            file.len(),
            Box::new(|at, len| {
                calls.set(calls.get() + 1);
                Ok(file[at..at + len].to_vec())
            }),
        )
        .unwrap();
        let bytes = WeightMap::new(&file).unwrap();
        for (how, map) in [("reader", &reader), ("bytes", &bytes)] {
            let got = map.f32_rows("w", &[rows, cols], 3..rows - 2).unwrap();
            assert_eq!(got.len(), want.len(), "{how}");
            let bad = got.iter().zip(&want).position(|(g, w)| g.to_bits() != w.to_bits());
            assert_eq!(bad, None, "{how}: first wrong value");
        }
        assert!(calls.get() >= 3, "the reader was asked {} times: not in pieces", calls.get());
    }
}
