//! Greedy decoding with a KV cache, one token at a time, so a caller (CLI, Web Worker) can stream.
//!
//! The next token's forward pass is queued on the device as soon as a token is known, before the
//! caller gets it: on WebGPU the GPU computes while the page draws the token.

use burn::tensor::{Int, Tensor};

use crate::error::Result;
use crate::readback::read_ints;
use crate::model::{ForwardOptions, Idefics3, KvCache};

pub struct Generation {
    cache: KvCache,
    /// argmax of the last logits, not yet read back: [1]
    pending: Option<Tensor<1, Int>>,
    pub produced: Vec<u32>,
    pub max_new_tokens: usize,
    pub eos: Vec<u32>,
    pub prompt_len: usize,
    pub finished: bool,
    /// With explicit prefill positions: the position of the next token (the last one + 1).
    next_position: Option<usize>,
}

impl Generation {
    /// Runs the prefill over `embeds` [1, n, d] and queues the first greedy token.
    pub fn start(
        model: &Idefics3,
        embeds: Tensor<3>,
        opts: &ForwardOptions,
        max_new_tokens: usize,
        eos: Vec<u32>,
    ) -> Self {
        let mut cache = model.text.new_cache();
        let prompt_len = embeds.dims()[1];
        // sized once for the whole answer: decoding writes each token's keys in place
        cache.reserve(prompt_len + max_new_tokens);
        let out = model.text.forward(embeds, &mut cache, opts);
        let s = out.hidden.dims()[1];
        let last = out.hidden.narrow(1, s - 1, 1);
        let logits = model.text.logits(last).reshape([-1]);
        Self {
            cache,
            pending: Some(logits.argmax(0)),
            produced: Vec::new(),
            max_new_tokens,
            eos,
            prompt_len,
            finished: max_new_tokens == 0,
            next_position: opts.positions.as_ref().and_then(|p| p.iter().max()).map(|&m| m + 1),
        }
    }

    pub fn kv_cache_bytes(&self) -> usize {
        self.cache.bytes()
    }

    /// Sequence length held by each layer's cache (shorter from a deep drop's layer on).
    pub fn cache_lens(&self) -> Vec<usize> {
        (0..self.cache.layers.len()).map(|l| self.cache.len(l)).collect()
    }

    /// The next greedy token, or None when finished (eos, which is not returned, or max length).
    pub async fn next_token(&mut self, model: &Idefics3) -> Result<Option<u32>> {
        if self.finished {
            return Ok(None);
        }
        let Some(pending) = self.pending.take() else {
            self.finished = true;
            return Ok(None);
        };
        let tok = read_ints(pending).await?[0] as u32;
        if self.eos.contains(&tok) {
            self.finished = true;
            return Ok(None);
        }
        self.produced.push(tok);
        if self.produced.len() >= self.max_new_tokens {
            self.finished = true;
        } else {
            let emb = model.text.embed(&[tok]).unsqueeze::<3>();
            let opts = ForwardOptions { positions: self.next_position.map(|p| vec![p]), ..Default::default() };
            if let Some(p) = &mut self.next_position {
                *p += 1;
            }
            let out = model.text.forward(emb, &mut self.cache, &opts);
            let logits = model.text.logits(out.hidden).reshape([-1]);
            self.pending = Some(logits.argmax(0));
        }
        Ok(Some(tok))
    }
}
