//! The built-in model's training objective: the teacher-forced answer loss over groups of
//! questions about one scene, and the auxiliary labels (what each visual token shows, which
//! tokens a question refers to) that the training bin adds to it.

use super::*;

/// Teacher-forced answer loss of a batch.
pub struct BatchLoss {
    /// Mean cross-entropy over the answer tokens (answer words and `<end_of_utterance>`): [1].
    pub loss: Tensor<1>,
    /// Logits at the answer positions [answer tokens, vocab], in batch order.
    pub logits: Tensor<2>,
    /// The target token of each row of `logits`.
    pub targets: Vec<u32>,
    /// Row ranges of `logits` per question, in batch order (group by group).
    pub rows: Vec<std::ops::Range<usize>>,
    /// The connector output of every image of the batch [images, tokens, d_t] (what the decoder
    /// reads; the training bin puts its auxiliary per-token loss on it).
    pub features: Tensor<3>,
    /// Final-norm decoder states of every question's suffix [questions, suffix length, d_t]:
    /// position i is the question's word i (the suffix starts right after the image block).
    pub suffix_hidden: Tensor<3>,
    /// With `attention_at`: that decoder layer's attention probabilities of every suffix query,
    /// [questions, heads, suffix length, prefix + suffix length].
    pub attention_probs: Option<Tensor<4>>,
    /// Where the visual tokens start among the keys (the prefix's first `<image>`).
    pub image_start: usize,
}

impl DataSource {
    /// Scene `index` of `split` with `k` sampled questions about it: the first is the one
    /// [`DataSource::example`] gives, the others are sampled with seeds derived from the scene's.
    pub fn group(&self, split: Split, index: u64, k: usize) -> Result<Vec<Example>> {
        let seed = scene_seed(split, index);
        let scene = Scene::generate(seed, &self.scenes);
        (0..k)
            .map(|j| {
                let qseed = if j == 0 { seed } else { crate::scenes::mix64(seed ^ (j as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)) };
                self.example_for(scene.clone(), scene.sample_qa(qseed))
            })
            .collect()
    }
}

/// [`group_loss`] with every example its own image.
pub fn batch_loss(model: &Idefics3, data: &DataSource, examples: &[&Example]) -> Result<BatchLoss> {
    let groups: Vec<Vec<&Example>> = examples.iter().map(|e| vec![*e]).collect();
    group_loss(model, data, &groups, None)
}

/// Teacher-forced answer loss of groups of questions, each group about one image (the pixels of
/// its first example). The images are encoded in one vision forward and their features merged
/// into the shared prompt prefix (everything up to the image block's closing
/// `<fake_token_around_image>`, the same for every single-tile prompt) with
/// [`Idefics3::merge_embeds`], the inference path. The decoder runs once over the prefixes; its
/// KV cache is then repeated for every question of the image, and the question suffixes (question,
/// `<end_of_utterance>` "\n" "assistant" ":", the answer; right-padded with `<pad>`, which a causal
/// decoder never lets a real position see) run on top of it. Numerically this is the full prompt
/// run per question; the prefix is computed once per image instead of once per question.
/// Cross-entropy is taken at the positions that predict the answer tokens only. `attention_at`:
/// also return the suffix queries' attention probabilities at that decoder layer.
pub fn group_loss(
    model: &Idefics3,
    data: &DataSource,
    groups: &[Vec<&Example>],
    attention_at: Option<usize>,
) -> Result<BatchLoss> {
    let device = model.device();
    let images = groups.len();
    assert!(images > 0 && groups.iter().all(|g| !g.is_empty()), "empty batch or group");
    let tile = data.processor.tile;
    let first = groups[0][0];
    let Some(last_image) = first.prompt.iter().rposition(|&t| t == data.image_token_id) else {
        return Err(Error::Prompt("training prompt without <image> tokens".into()));
    };
    let prefix = &first.prompt[..last_image + 2];
    let mut px = Vec::with_capacity(images * 3 * tile * tile);
    for g in groups {
        let e = g[0];
        if e.num_tiles != 1 || g.iter().any(|q| !q.prompt.starts_with(prefix) || q.scene.seed != e.scene.seed) {
            return Err(Error::Prompt("group_loss takes single-tile prompts, one scene per group".into()));
        }
        px.extend_from_slice(&e.pixels);
    }
    let pixels = Tensor::<4>::from_data(TensorData::new(px, [images, 3, tile, tile]), &device);
    let features = model.encode(pixels, &[]).features;
    let [_, n, d] = features.dims();
    let embeds: Vec<Tensor<3>> = (0..images)
        .map(|i| {
            let f = features.clone().narrow(0, i, 1).reshape([n, d]);
            model.merge_embeds(prefix, data.image_token_id, Some(f))
        })
        .collect::<Result<_>>()?;
    let mut cache = model.text.new_cache();
    model.text.forward(Tensor::cat(embeds, 0), &mut cache, &ForwardOptions::default());

    // one cache row per question
    let owner: Vec<i64> = groups.iter().enumerate().flat_map(|(i, g)| std::iter::repeat(i as i64).take(g.len())).collect();
    let q = owner.len();
    let owner = Tensor::<1, Int>::from_data(TensorData::new(owner, [q]), &device);
    for l in 0..cache.layers.len() {
        if let Some((k, v)) = cache.take_tensors(l, &device) {
            cache.layers[l] = Some(LayerKv::Tensors(k.select(0, owner.clone()), v.select(0, owner.clone())));
        }
    }
    let p = prefix.len();
    let suffixes: Vec<Vec<u32>> = groups
        .iter()
        .flatten()
        .map(|e| {
            let mut ids = e.prompt[p..].to_vec();
            ids.extend_from_slice(&e.answer[..e.answer.len() - 1]);
            ids
        })
        .collect();
    let len = suffixes.iter().map(|v| v.len()).max().unwrap();
    let mut ids = Vec::with_capacity(q * len);
    let mut positions: Vec<i64> = Vec::new();
    let mut targets = Vec::new();
    let mut rows = Vec::with_capacity(q);
    for (i, (e, s)) in groups.iter().flatten().zip(&suffixes).enumerate() {
        ids.extend_from_slice(s);
        ids.resize((i + 1) * len, data.pad_id);
        let start = targets.len();
        for (k, &t) in e.answer.iter().enumerate() {
            positions.push((i * len + e.prompt.len() - p - 1 + k) as i64);
            targets.push(t);
        }
        rows.push(start..targets.len());
    }
    let x = model.text.embed(&ids).reshape([q, len, d]);
    let opts = ForwardOptions { attention_probs_at: attention_at, ..Default::default() };
    let fwd = model.text.forward(x, &mut cache, &opts);
    let hidden = fwd.hidden;
    let m = positions.len();
    let pos = Tensor::<1, Int>::from_data(TensorData::new(positions, [m]), &device);
    let h = hidden.clone().reshape([q * len, d]).select(0, pos);
    let logits = model.text.logits(h);
    let tgt: Vec<i64> = targets.iter().map(|&t| t as i64).collect();
    let tgt = Tensor::<2, Int>::from_data(TensorData::new(tgt, [m, 1]), &device);
    let nll = log_softmax(logits.clone(), 1).gather(1, tgt).neg();
    let loss = nll.mean();
    let image_start = prefix.iter().position(|&t| t == data.image_token_id).unwrap();
    Ok(BatchLoss {
        loss,
        logits,
        targets,
        rows,
        features,
        suffix_hidden: hidden,
        attention_probs: fwd.attention_probs,
        image_start,
    })
}

/// Classes of the auxiliary labels of a referred object ([`reference_labels`]): colour, shape,
/// size, which horizontal half and which vertical half of the image its centre is in.
pub const REFERENCE_CLASSES: [usize; 5] = [Colour::ALL.len(), Shape::ALL.len(), Size::ALL.len(), 2, 2];

/// Auxiliary labels on the question's own words, for training: at the last word of the phrase
/// that names an object ("circle" in "what colour is the large circle?", "object" in "what shape
/// is the red object?") and at the final "?", the attributes of the object the phrase names
/// ([`REFERENCE_CLASSES`] order). Relation questions label the anchor at its phrase and the
/// answer's object at "?". Count and existence questions have none. Returns (word index, labels).
pub fn reference_labels(scene: &Scene, qa: &Qa) -> Vec<(usize, [usize; 5])> {
    use crate::scenes::QaKind;
    let words = crate::scenes::tokenize(&qa.question);
    let n = words.len();
    let labels = |i: usize| {
        let o = &scene.objects[i];
        [
            Colour::ALL.iter().position(|&k| k == o.colour).unwrap(),
            Shape::ALL.iter().position(|&k| k == o.shape).unwrap(),
            Size::ALL.iter().position(|&k| k == o.size).unwrap(),
            (2 * o.cx >= scene.width) as usize,
            (2 * o.cy >= scene.height) as usize,
        ]
    };
    let before = |w: &[&str]| words.iter().position(|x| w.contains(x)).map(|i| i - 1);
    let phrase_end = match qa.kind {
        QaKind::ColourOfShape | QaKind::ShapeOfColour | QaKind::Relation => Some(n - 2),
        QaKind::Side => before(&["on", "at"]),
        QaKind::Size => before(&["small"]),
        QaKind::Count | QaKind::Exists => None,
    };
    let Some(end) = phrase_end else { return vec![] };
    match qa.kind {
        QaKind::Relation => vec![(end, labels(qa.about[1])), (n - 1, labels(qa.about[0]))],
        _ => vec![(end, labels(qa.about[0])), (n - 1, labels(qa.about[0]))],
    }
}

/// The visual tokens (row-major squares of `block` pixels) of which object `i` covers at least
/// `block * block / 16` pixels (the rule of [`token_labels`]).
pub fn object_tokens(scene: &Scene, i: usize, block: usize) -> Vec<usize> {
    let o = &scene.objects[i];
    let cols = scene.width / block;
    let (x0, y0, x1, y1) = o.bbox;
    let mut out = Vec::new();
    for hb in y0 / block..=((y1 - 1) / block).min(scene.height / block - 1) {
        for wb in x0 / block..=((x1 - 1) / block).min(cols - 1) {
            let c: usize = (hb * block..(hb + 1) * block)
                .map(|y| (wb * block..(wb + 1) * block).filter(|&x| o.covers(x, y)).count())
                .sum();
            if c * 16 >= block * block {
                out.push(hb * cols + wb);
            }
        }
    }
    out
}

/// Where the decoder should look, for attention supervision in training: (word index of the
/// question, visual tokens). At the end of the phrase naming an object, that object's tokens (the
/// anchor's for a relation question); at the final "?", the tokens of the objects the answer is
/// about (the counted objects, the matching objects of a "yes" existence question, the answer's
/// object of a relation question). Nothing where there is no such object (a count of zero, "no").
pub fn attention_targets(scene: &Scene, qa: &Qa, block: usize) -> Vec<(usize, Vec<usize>)> {
    use crate::scenes::QaKind;
    let n = crate::scenes::tokenize(&qa.question).len();
    let tokens = |objs: &[usize]| {
        let mut t: Vec<usize> = objs.iter().flat_map(|&i| object_tokens(scene, i, block)).collect();
        t.sort_unstable();
        t.dedup();
        t
    };
    let mut out: Vec<(usize, Vec<usize>)> = reference_labels(scene, qa)
        .into_iter()
        .take(1)
        .map(|(w, _)| {
            let obj = if qa.kind == QaKind::Relation { qa.about[1] } else { qa.about[0] };
            (w, tokens(&[obj]))
        })
        .collect();
    if !qa.about.is_empty() {
        let last = if qa.kind == QaKind::Relation { tokens(&qa.about[..1]) } else { tokens(&qa.about) };
        out.push((n - 1, last));
    }
    out.retain(|(_, t)| !t.is_empty());
    out
}

/// Classes of the auxiliary per-token labels ([`token_labels`]): colour (none + 8), shape
/// (none + 4), size (none + 2), and whether an object's centre lies in the token's square.
pub const LABEL_CLASSES: [usize; 4] = [1 + Colour::ALL.len(), 1 + Shape::ALL.len(), 1 + Size::ALL.len(), 2];

/// Per-token labels of a scene for an auxiliary training loss: for each visual token (row-major
/// squares of `block` pixels, the token order of the pixel-shuffle connector on a single tile)
/// `[colour, shape, size, centre]`, class 0 meaning "no object". The object is the one covering
/// the most pixels of the square, if it covers at least `block * block / 16` of them; `centre`
/// is 1 when the centre of some object's box lies in the square.
pub fn token_labels(scene: &Scene, block: usize) -> Vec<[usize; 4]> {
    let (cols, rows) = (scene.width / block, scene.height / block);
    let mut out = Vec::with_capacity(rows * cols);
    for hb in 0..rows {
        for wb in 0..cols {
            let mut best = (0usize, None::<&crate::scenes::Object>);
            for o in &scene.objects {
                let mut c = 0;
                for y in hb * block..(hb + 1) * block {
                    for x in wb * block..(wb + 1) * block {
                        c += o.covers(x, y) as usize;
                    }
                }
                if c > best.0 {
                    best = (c, Some(o));
                }
            }
            let mut l = [0usize; 4];
            if let (c, Some(o)) = best {
                if c * 16 >= block * block {
                    l[0] = 1 + Colour::ALL.iter().position(|&k| k == o.colour).unwrap();
                    l[1] = 1 + Shape::ALL.iter().position(|&k| k == o.shape).unwrap();
                    l[2] = 1 + Size::ALL.iter().position(|&k| k == o.size).unwrap();
                }
            }
            let inside = |a: usize, lo: usize| a >= 2 * lo * block && a < 2 * (lo + 1) * block;
            l[3] = scene
                .objects
                .iter()
                .any(|o| inside(o.bbox.0 + o.bbox.2, wb) && inside(o.bbox.1 + o.bbox.3, hb)) as usize;
            out.push(l);
        }
    }
    out
}
