//! Llama decoder (SmolLM2) as in HF `modeling_llama.py`: RMSNorm, rotate-half RoPE, grouped-query
//! attention, SwiGLU MLP, a KV cache, and an untied or tied lm_head.
//!
//! RoPE positions: by default a token's position in layer l is its index in that layer's sequence
//! (cache length + offset). Without dropping this is the usual 0..n; when visual tokens are
//! dropped at a deep layer (`LayerDrop`), the layers from there on renumber the kept positions
//! contiguously, as the information-horizon paper does. With explicit `ForwardOptions::positions`
//! (HF's `position_ids`) every token keeps the position it is given, in every layer, across gaps
//! and drops: the KV cache holds keys already rotated, so gaps need nothing else.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::activation::{silu, softmax};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Int, Tensor, TensorData};

use super::kv_cache::{HostKv, KvCache, LayerKv};
use super::layers::{linear, RmsNorm};
use super::rope::{apply_rope, rope_tables, rope_tables_at};
use super::vocab::VocabMatrix;
use super::walk::{Prefix, Visitor};
use crate::config::TextConfig;
use crate::error::Result;

#[derive(Module, Debug)]
pub struct TextAttention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub o_proj: Linear,
    #[module(skip)]
    pub heads: usize,
    #[module(skip)]
    pub kv_heads: usize,
    #[module(skip)]
    pub head_dim: usize,
}

#[derive(Module, Debug)]
pub struct TextMlp {
    pub gate_proj: Linear,
    pub up_proj: Linear,
    pub down_proj: Linear,
}

#[derive(Module, Debug)]
pub struct DecoderLayer {
    pub input_layernorm: RmsNorm,
    pub self_attn: TextAttention,
    pub post_attention_layernorm: RmsNorm,
    pub mlp: TextMlp,
}

#[derive(Module, Debug)]
pub struct TextModel {
    /// [vocab, hidden], in blocks of rows on a device whose buffers cannot hold it whole.
    pub embed_tokens: VocabMatrix,
    pub layers: Vec<DecoderLayer>,
    pub norm: RmsNorm,
    /// [vocab, hidden] as in the checkpoint (logits = hidden times its transpose); None when the
    /// embeddings are tied.
    pub lm_head: Option<VocabMatrix>,
    #[module(skip)]
    pub rope_theta: f64,
    #[module(skip)]
    pub head_dim: usize,
}

/// Keep only `keep` (ascending sequence indices of this forward's input) from layer `layer` on.
#[derive(Clone, Debug)]
pub struct LayerDrop {
    pub layer: usize,
    pub keep: Vec<usize>,
}

#[derive(Clone, Debug, Default)]
pub struct ForwardOptions {
    pub drop: Option<LayerDrop>,
    /// Return the head-averaged attention of the last query over all keys at this layer (FastV).
    pub last_query_attention_at: Option<usize>,
    /// Stop after this layer (its output is returned without the final norm being meaningful for
    /// logits): FastV only needs the early layers.
    pub stop_after_layer: Option<usize>,
    /// Return every query's attention probabilities at this layer (training: the built-in model's
    /// attention supervision).
    pub attention_probs_at: Option<usize>,
    /// Explicit RoPE position of each token of this call (HF's `position_ids`); None: the cache
    /// length + offset, per layer.
    pub positions: Option<Vec<usize>>,
}

pub struct ForwardOutput {
    /// Final-norm hidden states [1, seq_out, hidden] (seq_out < seq_in after a drop).
    pub hidden: Tensor<3>,
    pub last_query_attention: Option<Tensor<1>>,
    /// [b, heads, s, cache + s] when `attention_probs_at` asked for them.
    pub attention_probs: Option<Tensor<4>>,
}

/// Query rows per causal attention call in a prefill (see `TextAttention::forward`).
const CAUSAL_BLOCK: usize = 256;

impl TextAttention {
    /// x [1, s, d]; positions start at the cache length of this layer.
    fn forward(
        &self,
        x: Tensor<3>,
        cache: &mut Option<LayerKv>,
        reserve: usize,
        rope: &(Tensor<2>, Tensor<2>),
        want_last_query: bool,
        want_probs: bool,
    ) -> (Tensor<3>, Option<Tensor<1>>, Option<Tensor<4>>) {
        let [b, s, _] = x.dims();
        let (h, kvh, hd) = (self.heads, self.kv_heads, self.head_dim);
        let q = linear(&self.q_proj, x.clone()).reshape([b, s, h, hd]).swap_dims(1, 2);
        let k = linear(&self.k_proj, x.clone()).reshape([b, s, kvh, hd]).swap_dims(1, 2);
        let v = linear(&self.v_proj, x).reshape([b, s, kvh, hd]).swap_dims(1, 2);
        let q = apply_rope(q, &rope.0, &rope.1);
        let k = apply_rope(k, &rope.0, &rope.1);
        // One prompt on flex: the keys and values go into the layer's buffers and our kernel reads
        // them there (src/cpu/attention.rs: grouped heads, bottom-right causal mask, the
        // head-averaged probabilities for FastV from the same softmax).
        if b == 1 && !want_probs && matches!(cache, None | Some(LayerKv::Host(_))) {
            if cache.is_none() {
                *cache = Some(LayerKv::Host(HostKv::new(kvh, hd, 0)));
            }
            let Some(LayerKv::Host(kv)) = cache else { unreachable!() };
            if kv.append(&k, &v, reserve) {
                let l = kv.len;
                let qp = crate::cpu::flex::primitive(&q);
                if let Some(qv) = qp.as_ref().and_then(crate::cpu::flex::view4) {
                    let device = q.device();
                    let (out, mean) = crate::cpu::flex::attention_views(
                        1, h, kvh, s, l, hd, true, qv, kv.view(false), kv.view(true), want_last_query, &device,
                    )
                    .expect("f32 views");
                    let last = mean.map(|m| m.narrow(1, s - 1, 1).reshape([l]));
                    return (linear(&self.o_proj, out), last, None);
                }
                // q is not readable in place (not expected after k was): burn's path below, with
                // this layer's cache as tensors
                let (pk, pv) = kv.tensors(&q.device());
                *cache = Some(LayerKv::Tensors(pk, pv));
                return self.attend_tensors(q, cache, s, want_last_query, want_probs);
            }
            if kv.len == 0 {
                *cache = None;
            } else {
                let (pk, pv) = kv.tensors(&q.device());
                *cache = Some(LayerKv::Tensors(pk, pv));
            }
        }
        let (k, v) = match cache.take() {
            Some(LayerKv::Tensors(pk, pv)) => (Tensor::cat(vec![pk, k], 2), Tensor::cat(vec![pv, v], 2)),
            Some(LayerKv::Host(kv)) => {
                let (pk, pv) = kv.tensors(&k.device());
                (Tensor::cat(vec![pk, k], 2), Tensor::cat(vec![pv, v], 2))
            }
            None => (k, v),
        };
        *cache = Some(LayerKv::Tensors(k, v));
        self.attend_tensors(q, cache, s, want_last_query, want_probs)
    }

    /// Attention of q [b, heads, s, hd] over the layer's cached tensors (which already hold this
    /// call's keys), with burn's ops.
    fn attend_tensors(
        &self,
        q: Tensor<4>,
        cache: &Option<LayerKv>,
        s: usize,
        want_last_query: bool,
        want_probs: bool,
    ) -> (Tensor<3>, Option<Tensor<1>>, Option<Tensor<4>>) {
        let Some(LayerKv::Tensors(k, v)) = cache else { unreachable!("the cache holds tensors") };
        let (k, v) = (k.clone(), v.clone());
        let [b, _, _, _] = q.dims();
        let (h, kvh, hd) = (self.heads, self.kv_heads, self.head_dim);
        let g = h / kvh;
        let l = k.dims()[2];
        let past = l - s;
        if !want_last_query && !want_probs {
            // The backend's fused attention. Query heads h = kv * g + j share kv head `kv` (HF
            // repeat_kv). One new token: its g query heads are g rows against the shared K, V (no
            // copy). Several: causal (bottom-right aligned, i.e. key j visible to query i iff
            // j <= past + i), which needs each head's own rows, so K and V are repeated.
            let out = if s == 1 {
                let opts = AttentionModuleOptions { scale: None, softcap: None, is_causal: false };
                attention(q.reshape([b, kvh, g, hd]), k, v, None, None, opts).reshape([b, 1, h * hd])
            } else {
                let rep = |t: Tensor<4>| t.unsqueeze_dim::<5>(2).expand([b, kvh, g, l, hd]).reshape([b, h, l, hd]);
                let (k, v) = (rep(k), rep(v));
                let opts = AttentionModuleOptions { scale: None, softcap: None, is_causal: true };
                // Query blocks see only the keys up to their last row: the causal triangle's
                // masked upper half is skipped instead of computed and discarded (flex's kernel
                // does not skip masked tiles). Each call stays bottom-right aligned.
                let parts: Vec<Tensor<4>> = (0..s)
                    .step_by(CAUSAL_BLOCK)
                    .map(|i0| {
                        let n = CAUSAL_BLOCK.min(s - i0);
                        let kl = past + i0 + n;
                        let (qb, kb, vb) = if n == s {
                            (q.clone(), k.clone(), v.clone())
                        } else {
                            (q.clone().narrow(2, i0, n), k.clone().narrow(2, 0, kl), v.clone().narrow(2, 0, kl))
                        };
                        attention(qb, kb, vb, None, None, opts.clone())
                    })
                    .collect();
                Tensor::cat(parts, 2).swap_dims(1, 2).reshape([b, s, h * hd])
            };
            return (linear(&self.o_proj, out), None, None);
        }
        // The explicit path, when FastV needs the last query's attention row (or training wants
        // every row).
        // Query heads are grouped by kv head instead of copying K and V.
        let q = q.reshape([b, kvh, g * s, hd]);
        let scores = q.matmul(k.swap_dims(2, 3)) * (hd as f64).powf(-0.5);
        let scores = if s > 1 {
            let mut mask = vec![0f32; s * l];
            for i in 0..s {
                for j in (past + i + 1)..l {
                    mask[i * l + j] = -1e30;
                }
            }
            let mask = Tensor::<2>::from_data(TensorData::new(mask, [s, l]), &scores.device());
            (scores.reshape([b, kvh, g, s, l]) + mask.unsqueeze::<5>()).reshape([b, kvh, g * s, l])
        } else {
            scores
        };
        let probs = softmax(scores, 3);
        let last = want_last_query.then(|| {
            probs
                .clone()
                .reshape([b, h, s, l])
                .narrow(2, s - 1, 1)
                .mean_dim(1)
                .reshape([l])
        });
        let all = want_probs.then(|| probs.clone().reshape([b, h, s, l]));
        let out = probs.matmul(v).reshape([b, h, s, hd]).swap_dims(1, 2).reshape([b, s, h * hd]);
        (linear(&self.o_proj, out), last, all)
    }
}

impl TextMlp {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let (gate, up) = (linear(&self.gate_proj, x.clone()), linear(&self.up_proj, x));
        let act = crate::cpu::flex::silu_mul(gate, up).unwrap_or_else(|(gate, up)| silu(gate) * up);
        linear(&self.down_proj, act)
    }
}

impl DecoderLayer {
    /// `{at}.input_layernorm`, `{at}.post_attention_layernorm`, `{at}.self_attn.{q,k,v,o}_proj`,
    /// `{at}.mlp.{gate,up,down}_proj` (biases as the config says).
    fn walk<V: Visitor>(v: &mut V, at: &Prefix, c: &TextConfig, this: Option<&Self>) -> Result<Self> {
        let (d, eps, i) = (c.hidden_size, c.rms_norm_eps, c.intermediate_size);
        let (h, kvh, hd, ab) = (c.num_attention_heads, c.num_kv_heads(), c.head_dim(), c.attention_bias);
        // in the order of HF's state dict (random checkpoints draw their values in this order)
        let input_layernorm = RmsNorm::walk(v, &at.pp("input_layernorm"), d, eps, this.map(|s| &s.input_layernorm))?;
        let post_attention_layernorm =
            RmsNorm::walk(v, &at.pp("post_attention_layernorm"), d, eps, this.map(|s| &s.post_attention_layernorm))?;
        let (a, attn) = (at.pp("self_attn"), this.map(|s| &s.self_attn));
        let self_attn = TextAttention {
            q_proj: v.linear(&a.pp("q_proj"), d, h * hd, ab, attn.map(|s| &s.q_proj))?,
            k_proj: v.linear(&a.pp("k_proj"), d, kvh * hd, ab, attn.map(|s| &s.k_proj))?,
            v_proj: v.linear(&a.pp("v_proj"), d, kvh * hd, ab, attn.map(|s| &s.v_proj))?,
            o_proj: v.linear(&a.pp("o_proj"), h * hd, d, ab, attn.map(|s| &s.o_proj))?,
            heads: h,
            kv_heads: kvh,
            head_dim: hd,
        };
        let (m, mlp) = (at.pp("mlp"), this.map(|s| &s.mlp));
        let mlp = TextMlp {
            gate_proj: v.linear(&m.pp("gate_proj"), d, i, c.mlp_bias, mlp.map(|s| &s.gate_proj))?,
            up_proj: v.linear(&m.pp("up_proj"), d, i, c.mlp_bias, mlp.map(|s| &s.up_proj))?,
            down_proj: v.linear(&m.pp("down_proj"), i, d, c.mlp_bias, mlp.map(|s| &s.down_proj))?,
        };
        Ok(Self { input_layernorm, self_attn, post_attention_layernorm, mlp })
    }
}

impl TextModel {
    /// `{at}.embed_tokens.weight` [vocab, d], `{at}.layers.{i}`, `{at}.norm.weight`, and
    /// `{lm_head}.weight` [vocab, d] unless the embeddings are `tied` (then only if the file has it).
    pub fn walk<V: Visitor>(
        v: &mut V,
        at: &Prefix,
        lm_head: &Prefix,
        c: &TextConfig,
        tied: bool,
        this: Option<&Self>,
    ) -> Result<Self> {
        let (d, eps) = (c.hidden_size, c.rms_norm_eps);
        let embed_tokens =
            v.vocab(&at.pp("embed_tokens").pp("weight"), c.vocab_size, d, this.map(|s| &s.embed_tokens))?;
        let layers = (0..c.num_hidden_layers)
            .map(|i| DecoderLayer::walk(v, &at.pp("layers").pp(i), c, this.map(|s| &s.layers[i])))
            .collect::<Result<Vec<_>>>()?;
        let norm = RmsNorm::walk(v, &at.pp("norm"), d, eps, this.map(|s| &s.norm))?;
        let lm = lm_head.pp("weight");
        let lm_head = match this {
            _ if !tied => Some(v.vocab(&lm, c.vocab_size, d, this.and_then(|s| s.lm_head.as_ref()))?),
            Some(s) => s.lm_head.as_ref().map(|h| v.vocab(&lm, c.vocab_size, d, Some(h))).transpose()?,
            None if v.holds(&lm) => Some(v.vocab(&lm, c.vocab_size, d, None)?),
            None => None,
        };
        Ok(Self { embed_tokens, layers, norm, lm_head, rope_theta: c.rope_theta(), head_dim: c.head_dim() })
    }

    pub fn new_cache(&self) -> KvCache {
        KvCache::new(self.layers.len())
    }

    /// Token ids -> input embeddings [n, hidden].
    pub fn embed(&self, ids: &[u32]) -> Tensor<2> {
        self.embed_tokens.rows(ids)
    }

    /// Runs the decoder over `embeds` [1, s, hidden], appending to `cache`.
    pub fn forward(&self, embeds: Tensor<3>, cache: &mut KvCache, opts: &ForwardOptions) -> ForwardOutput {
        let device = embeds.device();
        let mut x = embeds;
        let mut last_query_attention = None;
        let mut attention_probs = None;
        let mut rope: Option<(usize, usize, (Tensor<2>, Tensor<2>))> = None;
        let mut positions = opts.positions.clone();
        if let Some(p) = &positions {
            assert_eq!(p.len(), x.dims()[1], "one position per token");
        }
        let mut explicit = positions.as_ref().map(|p| rope_tables_at(p, self.head_dim, self.rope_theta, &device));
        for (i, layer) in self.layers.iter().enumerate() {
            if let Some(drop) = &opts.drop {
                if drop.layer == i {
                    let idx: Vec<i64> = drop.keep.iter().map(|&k| k as i64).collect();
                    let n = idx.len();
                    let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [n]), &device);
                    x = x.select(1, idx);
                    // explicit positions travel with their tokens
                    if let Some(p) = &mut positions {
                        *p = drop.keep.iter().map(|&k| p[k]).collect();
                        explicit = Some(rope_tables_at(p, self.head_dim, self.rope_theta, &device));
                    }
                }
            }
            let s = x.dims()[1];
            let start = cache.len(i);
            let tables = match (&explicit, rope.take()) {
                (Some(t), _) => t.clone(),
                (None, Some((st, sl, t))) if st == start && sl == s => t,
                _ => rope_tables(start, s, self.head_dim, self.rope_theta, &device),
            };
            let want = opts.last_query_attention_at == Some(i);
            let (a, last, probs) = layer.self_attn.forward(
                layer.input_layernorm.forward(x.clone()),
                &mut cache.layers[i],
                cache.reserve,
                &tables,
                want,
                opts.attention_probs_at == Some(i),
            );
            if probs.is_some() {
                attention_probs = probs;
            }
            rope = Some((start, s, tables));
            if last.is_some() {
                last_query_attention = last;
            }
            let h = x + a;
            x = h.clone() + layer.mlp.forward(layer.post_attention_layernorm.forward(h));
            if opts.stop_after_layer == Some(i) {
                break;
            }
        }
        ForwardOutput { hidden: self.norm.forward(x), last_query_attention, attention_probs }
    }

    /// hidden [.., hidden] -> logits [.., vocab]
    pub fn logits<const D: usize>(&self, hidden: Tensor<D>) -> Tensor<D> {
        self.lm_head.as_ref().unwrap_or(&self.embed_tokens).project(hidden)
    }
}
