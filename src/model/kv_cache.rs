//! The decoder's KV cache: per layer, keys (already rotated) and values, as device tensors or, on
//! the CPU path, host buffers sized once per answer and written in place token by token.

use burn::tensor::{Device, Tensor};

/// One layer's keys and values (keys already rotated).
#[derive(Clone)]
pub enum LayerKv {
    /// [b, kv_heads, len, head_dim] tensors, grown by concatenation: wgpu, the autodiff device of
    /// training, batches of several prompts.
    Tensors(Tensor<4>, Tensor<4>),
    /// One prompt on flex: buffers written in place (see [`HostKv`]).
    Host(HostKv),
}

/// Keys and values of one layer for one prompt on the CPU: f32 buffers [kv_heads, capacity,
/// head_dim], each token's rows written where they stay. Sized once per answer
/// ([`KvCache::reserve`]: prompt + new tokens), grown (doubling, one copy) only past that.
#[derive(Clone)]
pub struct HostKv {
    k: Vec<f32>,
    v: Vec<f32>,
    heads: usize,
    dim: usize,
    capacity: usize,
    pub(super) len: usize,
}

impl HostKv {
    pub(super) fn new(heads: usize, dim: usize, capacity: usize) -> Self {
        let n = heads * capacity * dim;
        Self { k: vec![0.0; n], v: vec![0.0; n], heads, dim, capacity, len: 0 }
    }

    fn grow(&mut self, capacity: usize) {
        let mut next = Self::new(self.heads, self.dim, capacity);
        for h in 0..self.heads {
            let (from, to, n) = (h * self.capacity * self.dim, h * capacity * self.dim, self.len * self.dim);
            next.k[to..to + n].copy_from_slice(&self.k[from..from + n]);
            next.v[to..to + n].copy_from_slice(&self.v[from..from + n]);
        }
        next.len = self.len;
        *self = next;
    }

    /// Appends the rows of k, v ([1, heads, s, dim] on flex, any strides with a contiguous last
    /// dimension); false (nothing written) when they cannot be read in place.
    pub(super) fn append(&mut self, k: &Tensor<4>, v: &Tensor<4>, reserve: usize) -> bool {
        use crate::cpu::flex::{primitive, view4};
        let [_, heads, s, dim] = k.dims();
        debug_assert_eq!((heads, dim), (self.heads, self.dim));
        let (Some(kp), Some(vp)) = (primitive(k), primitive(v)) else { return false };
        let (Some(kv), Some(vv)) = (view4(&kp), view4(&vp)) else { return false };
        if self.len + s > self.capacity {
            self.grow((self.len + s).max(reserve).max(2 * self.capacity));
        }
        for (src, dst) in [(kv, &mut self.k), (vv, &mut self.v)] {
            for h in 0..heads {
                for r in 0..s {
                    let from = h * src.strides.head + r * src.strides.row;
                    let to = (h * self.capacity + self.len + r) * dim;
                    dst[to..to + dim].copy_from_slice(&src.data[from..from + dim]);
                }
            }
        }
        self.len += s;
        true
    }

    pub(super) fn view(&self, values: bool) -> crate::cpu::attention::View<'_> {
        use crate::cpu::attention::{Strides, View};
        View {
            data: if values { &self.v } else { &self.k },
            strides: Strides::heads_major(self.heads, self.capacity, self.dim),
        }
    }

    /// The held rows as tensors [1, heads, len, dim].
    pub(super) fn tensors(&self, device: &Device) -> (Tensor<4>, Tensor<4>) {
        let take = |b: &Vec<f32>| {
            let mut out = Vec::with_capacity(self.heads * self.len * self.dim);
            for h in 0..self.heads {
                let at = h * self.capacity * self.dim;
                out.extend_from_slice(&b[at..at + self.len * self.dim]);
            }
            crate::cpu::flex::tensor(out, [1, self.heads, self.len, self.dim], device)
        };
        (take(&self.k), take(&self.v))
    }
}

/// Per-layer keys and values.
#[derive(Clone, Default)]
pub struct KvCache {
    pub layers: Vec<Option<LayerKv>>,
    /// Tokens the cache is sized for when a layer's first keys arrive (0: just those).
    pub(super) reserve: usize,
}

impl KvCache {
    pub fn new(layers: usize) -> Self {
        Self { layers: vec![None; layers], reserve: 0 }
    }

    /// Sizes each layer's buffers for `tokens` in all (prompt + new tokens) when they are made, so
    /// that decoding writes in place without growing.
    pub fn reserve(&mut self, tokens: usize) {
        self.reserve = tokens;
    }

    pub fn len(&self, layer: usize) -> usize {
        match &self.layers[layer] {
            None => 0,
            Some(LayerKv::Tensors(k, _)) => k.dims()[2],
            Some(LayerKv::Host(h)) => h.len,
        }
    }

    /// f32 bytes held for keys and values (a host cache's whole capacity).
    pub fn bytes(&self) -> usize {
        self.layers
            .iter()
            .flatten()
            .map(|l| match l {
                LayerKv::Tensors(k, v) => 4 * (k.shape().num_elements() + v.shape().num_elements()),
                LayerKv::Host(h) => 4 * (h.k.len() + h.v.len()),
            })
            .sum()
    }

    /// Every layer's keys and values as tensors [b, kv_heads, len, head_dim] (host buffers copied
    /// out), for a caller that reorders the batch.
    pub fn take_tensors(&mut self, layer: usize, device: &Device) -> Option<(Tensor<4>, Tensor<4>)> {
        match self.layers[layer].take()? {
            LayerKv::Tensors(k, v) => Some((k, v)),
            LayerKv::Host(h) => Some(h.tensors(device)),
        }
    }
}
