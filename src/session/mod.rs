//! What the page holds between calls, platform-neutral: the encoded image and its prompt, the
//! current ranking, the answer being generated, and its timings. `web.rs` forwards to this; the
//! native tests drive it the same way (tests/session.rs).
//!
//! The flow is split so that a keep-ratio slider never recomputes anything:
//! `encode` (image + question, once per image) -> `rank` (once per method / parameters / budget
//! mode; returns the full keep order) -> `answer(k)` (a pruned answer keeping the first k of the
//! order) -> `next_piece` (streams). `set_question` changes the question without re-encoding the
//! image, and drops the ranking when it read the question (prompt-aware, FastV).
//!
//! Only asynchronous readback is used (`Generation::next_token`, `read_floats`, `prune::rank`): a
//! synchronous readback panics on wasm.

mod reports;
pub use reports::*;

use crate::generate::Generation;
use crate::pipeline::EncodedImage;
use crate::preprocess::RgbImage;
use crate::prompt::TextStream;
use crate::prune::{self, agreement, BudgetMode, Method, MethodParams, Positions, PruneInputs, Ranking};
use crate::{Error, Result, Vlm};

/// Milliseconds from some fixed start (`performance.now()` in the browser, `native_clock` natively).
pub type Clock = fn() -> f64;

/// Milliseconds since the first call (a `Clock` for native sessions).
#[cfg(not(target_family = "wasm"))]
pub fn native_clock() -> f64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed().as_secs_f64() * 1e3
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

fn usage(msg: impl Into<String>) -> Error {
    Error::Other(msg.into())
}

/// The encoded image and the prompt built for it: what every ranking and answer starts from.
struct Prepared {
    encoded: EncodedImage,
    /// full prompt ids (every `<image>` position)
    ids: Vec<u32>,
    /// the question's own ids (prompt-aware relevance)
    question_ids: Vec<u32>,
    preprocess_ms: f64,
    encode_ms: f64,
    /// the feature norm's ranking per budget mode, once computed: what every ranking of this image
    /// is compared with (it reads neither the question nor any parameter)
    norm: Vec<(BudgetMode, Ranking)>,
}

impl Prepared {
    /// What the pruning methods read of this image and prompt.
    fn inputs<'a>(&'a self, vlm: &'a Vlm, zoo_plans: &'a crate::prune::zoo::PlanCache) -> PruneInputs<'a> {
        PruneInputs {
            zoo_plans: Some(zoo_plans),
            ..PruneInputs::new(&vlm.model, &self.encoded.tiles, vlm.config.image_token_id, &self.ids, &self.question_ids)
        }
    }
}

struct Ranked {
    method: Method,
    ranking: Ranking,
    rank_ms: f64,
    mode: BudgetMode,
}

/// A loaded model and what it holds for the current image.
pub struct Session {
    pub vlm: Vlm,
    clock: Clock,
    prepared: Option<Prepared>,
    ranked: Option<Ranked>,
    gen: Option<Generation>,
    /// tiles per vision forward in `encode` (1: the page, which reports each tile)
    chunk: usize,
    stream: TextStream,
    timings: Timings,
    t_ask: f64,
    t_first: f64,
    /// ZOO's plan, kept from one ranking to the next (it depends on the model, not the image)
    zoo_plans: crate::prune::zoo::PlanCache,
}

impl Session {
    pub fn new(vlm: Vlm, clock: Clock) -> Self {
        Session {
            vlm,
            clock,
            prepared: None,
            ranked: None,
            gen: None,
            chunk: 1,
            stream: TextStream::default(),
            timings: Timings::default(),
            t_ask: 0.0,
            t_first: 0.0,
            zoo_plans: Default::default(),
        }
    }

    /// Tiles per vision forward in later encodes (at least 1; the CLI's `--chunk`).
    pub fn set_chunk(&mut self, chunk: usize) {
        self.chunk = chunk.max(1);
    }

    pub fn info(&self) -> ModelInfo {
        let c = &self.vlm.config;
        ModelInfo {
            tokens_per_tile: self.vlm.image_seq_len(),
            tile_size: c.vision_config.image_size,
            vision_layers: c.vision_config.num_hidden_layers,
            text_layers: c.text_config.num_hidden_layers,
            text_hidden: c.text_config.hidden_size,
            vocab_size: c.text_config.vocab_size,
            params: burn::module::Module::num_params(&self.vlm.model),
            methods: Method::NAMES,
            prompt_methods: Method::NAMES
                .iter()
                .copied()
                .filter(|&n| Method::by_name(n, 0).is_ok_and(|m| m.needs_prompt()))
                .collect(),
            image_size: c.vision_config.image_size,
            patch_size: c.vision_config.patch_size,
            scale_factor: c.scale_factor,
            longest_edge: self.vlm.processor.longest_edge,
            image_splitting: self.vlm.processor.do_image_splitting,
            method_defaults: Method::NAMES
                .iter()
                .filter_map(|&n| {
                    let m = MethodParams::default().build(n, &self.vlm.config).ok()?;
                    Some((n, m.effective_params()))
                })
                .collect(),
            proxies: prune::Proxy::NAMES,
            fusions: prune::Fusion::NAMES,
            relevance_signs: prune::RelevanceSign::NAMES,
        }
    }

    /// The tile grid of a `width` x `height` image for every tiling choice the page offers
    /// (`max_grid` 0 = the model's own setting, then 1..=4), from `ProcessorConfig::layout`,
    /// without encoding anything.
    pub fn tiling(&self, width: u32, height: u32) -> Result<Vec<TilingChoice>> {
        if width == 0 || height == 0 {
            return Err(usage("the image is empty (0 pixels)"));
        }
        let per_tile = self.vlm.image_seq_len();
        Ok((0..=4usize)
            .map(|g| {
                let cfg =
                    if g == 0 { self.vlm.processor.clone() } else { self.vlm.processor.clone().with_max_grid(g) };
                let l = cfg.layout(width as usize, height as usize);
                TilingChoice {
                    max_grid: g,
                    rows: l.rows,
                    cols: l.cols,
                    tiles: l.num_tiles,
                    visual_tokens: l.num_tiles * per_tile,
                }
            })
            .collect())
    }

    /// Decodes and preprocesses the image, builds the prompt for `question`, and encodes every
    /// tile (vision encoder + connector). `max_grid` 0 keeps the model's own tiling. Drops any
    /// previous image, ranking and answer, also when it fails. `on_progress(done, total)` is
    /// called after each tile has been computed (its output read back).
    pub async fn encode(
        &mut self,
        image: &[u8],
        question: &str,
        max_grid: u32,
        mut on_progress: impl FnMut(usize, usize),
    ) -> Result<Encoding> {
        self.encode_until(image, question, max_grid, |done, total| {
            on_progress(done, total);
            std::future::ready(true)
        })
        .await
    }

    /// [`Self::encode`], asking `go_on(done, total)` after each tile whether to continue: when it
    /// answers false (a newer image, tiling or model is waiting: the page's Worker yields to its
    /// messages inside it) the encode stops there, holding no image, and says it was interrupted.
    pub async fn encode_until<F: std::future::Future<Output = bool>>(
        &mut self,
        image: &[u8],
        question: &str,
        max_grid: u32,
        go_on: impl FnMut(usize, usize) -> F,
    ) -> Result<Encoding> {
        self.gen = None;
        self.prepared = None;
        self.ranked = None;
        self.stream = TextStream::default();
        self.timings = Timings::default();
        let t0 = (self.clock)();
        let img = RgbImage::decode(image)?;
        let grid = if max_grid == 0 { None } else { Some(max_grid as usize) };
        let processed = self.vlm.preprocess(&img, grid)?;
        let ids = self.vlm.prompt_ids(question, &processed)?;
        let question_ids = self.vlm.tokenizer.question_ids(question)?;
        let t1 = (self.clock)();
        let encoded = self.vlm.encode_until(processed, self.chunk, &[], go_on).await?;
        let t2 = (self.clock)();
        self.prepared = Some(Prepared { encoded, ids, question_ids, preprocess_ms: t1 - t0, encode_ms: t2 - t1, norm: vec![] });
        Ok(self.encoding().expect("just prepared"))
    }

    /// What the last `encode` reported, while its image is held.
    pub fn encoding(&self) -> Option<Encoding> {
        let s = self.prepared.as_ref()?;
        let p = &s.encoded.processed;
        let n = s.encoded.token_rects.len();
        let per_tile = self.vlm.image_seq_len();
        Some(Encoding {
            tiles: p.num_tiles,
            rows: p.rows,
            cols: p.cols,
            tokens_per_tile: per_tile,
            visual_tokens: n,
            grid_tokens: if p.rows * p.cols > 0 { p.rows * p.cols * per_tile } else { n },
            image_width: p.original_width,
            image_height: p.original_height,
            token_rects: s.encoded.token_rects.iter().map(|r| [r.x, r.y, r.w, r.h]).collect(),
            prompt_tokens: s.ids.len(),
            preprocess_ms: s.preprocess_ms,
            encode_ms: s.encode_ms,
        })
    }

    /// Replaces the question of the encoded image (the image is not encoded again). Drops the
    /// ranking when it depended on the question (prompt-aware, FastV); `has_ranking` tells.
    /// Returns the new prompt length. On error (an empty question) nothing changes.
    pub fn set_question(&mut self, question: &str) -> Result<usize> {
        let prepared =
            self.prepared.as_mut().ok_or_else(|| usage("no image is encoded yet: call encode first"))?;
        let ids = self.vlm.prompt_ids(question, &prepared.encoded.processed)?;
        let question_ids = self.vlm.tokenizer.question_ids(question)?;
        if prepared.ids != ids {
            prepared.ids = ids;
            prepared.question_ids = question_ids;
            if self.ranked.as_ref().is_some_and(|r| r.method.needs_prompt()) {
                self.ranked = None;
            }
        }
        Ok(prepared.ids.len())
    }

    /// Whether an image is encoded.
    pub fn has_encoding(&self) -> bool {
        self.prepared.is_some()
    }

    /// Whether a ranking of the current image (and question, where it matters) is held.
    pub fn has_ranking(&self) -> bool {
        self.ranked.is_some()
    }

    /// Ranks the encoded image's visual tokens with `method` (one of `Method::NAMES`), its
    /// parameters and `budget` ("per-tile" or "global"). The ranking is kept for `answer`.
    pub async fn rank(&mut self, method: &str, params: &MethodParams, budget: &str) -> Result<RankReport> {
        if self.prepared.is_none() {
            return Err(usage("no image is encoded yet: call encode before rank"));
        }
        let method = params.build(method, &self.vlm.config)?;
        let mode = BudgetMode::parse(budget)?;
        self.ranked = None;
        self.ensure_maps(&method).await?;
        let prepared = self.prepared.as_ref().expect("checked above");
        let t0 = (self.clock)();
        let inputs = prepared.inputs(&self.vlm, &self.zoo_plans);
        let ranking = prune::rank(&method, &inputs, mode).await?;
        let rank_ms = (self.clock)() - t0;
        let cached = prepared.norm.iter().find(|(m, _)| *m == mode).map(|(_, r)| r.clone());
        let norm = match (cached, &method) {
            (Some(r), _) => r,
            (None, Method::FeatureNorm) => ranking.clone(),
            (None, _) => prune::rank(&Method::FeatureNorm, &inputs, mode).await?,
        };
        let report = RankReport {
            method: ranking.method.clone(),
            budget: mode.name(),
            params: method.effective_params(),
            order: ranking.order.clone(),
            scores: ranking.scores.iter().map(|&v| finite(v)).collect(),
            warnings: ranking.warnings.clone(),
            deep_drop: ranking.deep_drop.clone(),
            steps: ranking
                .steps
                .iter()
                .map(|s| StepReport {
                    token: s.token,
                    score: finite(s.score),
                    weight: finite(s.weight),
                    distance: finite(s.distance),
                })
                .collect(),
            rank_ms,
            spearman_vs_norm: finite(agreement::spearman_orders(&ranking.order, &norm.order)),
            spearman_scores_vs_norm: agreement::spearman_scores(&ranking.scores, &norm.scores),
        };
        let prepared = self.prepared.as_mut().expect("checked above");
        if !prepared.norm.iter().any(|(m, _)| *m == mode) {
            prepared.norm.push((mode, norm));
        }
        self.ranked = Some(Ranked { method, ranking, rank_ms, mode });
        Ok(report)
    }

    /// VisionZip needs the vision encoder's attention maps of its layer: `encode` does not compute
    /// them (about 20 % more encoder time for every image), so the first VisionZip ranking of an
    /// image runs the encoder again with that layer's maps and keeps them.
    async fn ensure_maps(&mut self, method: &Method) -> Result<()> {
        let (Method::VisionZip { layer: Some(layer) }, Some(prepared)) = (method, self.prepared.as_mut()) else {
            return Ok(());
        };
        if !prepared.encoded.tiles.attentions.iter().any(|(l, _)| l == layer) {
            let layers = [*layer];
            let again = self.vlm.encode_until(prepared.encoded.processed.clone(), self.chunk, &layers, |_, _| {
                std::future::ready(true)
            });
            prepared.encoded.tiles.attentions.extend(again.await?.tiles.attentions);
        }
        Ok(())
    }

    /// Ranks with another method (same image, question and budget mode as the current ranking)
    /// and reports how it agrees with the current one; the current ranking stays the one answers
    /// use.
    pub async fn compare(&mut self, method: &str, params: &MethodParams) -> Result<Comparison> {
        let ranked = self.ranked.as_ref().ok_or_else(|| usage("no ranking of this image yet: call rank first"))?;
        let mode = ranked.mode;
        let method = params.build(method, &self.vlm.config)?;
        self.ensure_maps(&method).await?;
        let prepared = self.prepared.as_ref().expect("a ranking implies an encoding");
        let ranked = self.ranked.as_ref().expect("checked above");
        let inputs = prepared.inputs(&self.vlm, &self.zoo_plans);
        let other = prune::rank(&method, &inputs, mode).await?;
        Ok(Comparison {
            method: other.method.clone(),
            params: method.effective_params(),
            overlap: agreement::overlap_curve(&ranked.ranking.order, &other.order),
            spearman: finite(agreement::spearman_orders(&ranked.ranking.order, &other.order)),
        })
    }

    /// Starts an answer that sees only the first `k` visual tokens of the last ranking (a count,
    /// 1..=visual tokens; with info-horizon also its random drop deep in the LLM). The answer then
    /// comes from `next_piece`. Any previous answer is dropped. `positions`: renumber the kept
    /// tokens 0..L-1 (the seeds' behaviour) or keep each one's position in the full prompt.
    pub fn answer(&mut self, k: usize, max_new_tokens: usize, positions: Positions) -> Result<()> {
        self.gen = None;
        let keep = self.kept(k)?;
        let ranked = self.ranked.as_ref().expect("kept checked the ranking");
        let (deep, method, rank_ms) = (ranked.ranking.deep_drop.clone(), ranked.ranking.method.clone(), ranked.rank_ms);
        self.start_answer(&keep, deep.as_ref(), max_new_tokens, positions)?;
        self.timings.method = Some(method);
        self.timings.rank_ms = Some(rank_ms);
        Ok(())
    }

    /// Starts an answer that sees every visual token (no ranking needed): the unpruned model.
    pub fn answer_unpruned(&mut self, max_new_tokens: usize, positions: Positions) -> Result<()> {
        self.gen = None;
        let prepared = self.prepared.as_ref().ok_or_else(|| usage("no image is encoded yet: call encode first"))?;
        let all: Vec<usize> = (0..prepared.encoded.token_rects.len()).collect();
        self.start_answer(&all, None, max_new_tokens, positions)
    }

    /// The visual tokens (prompt order) that `answer(k)` keeps: the first `k` of the last ranking.
    pub fn kept(&self, k: usize) -> Result<Vec<usize>> {
        self.prepared.as_ref().ok_or_else(|| usage("no image is encoded yet: call encode first"))?;
        let ranked = self.ranked.as_ref().ok_or_else(|| usage("no ranking of this image yet: call rank first"))?;
        let n = ranked.ranking.order.len();
        if k == 0 || k > n {
            return Err(usage(format!("the budget must keep between 1 and {n} visual tokens, got {k}")));
        }
        Ok(ranked.ranking.keep(k))
    }

    fn start_answer(
        &mut self,
        keep: &[usize],
        deep: Option<&prune::DeepDrop>,
        max_new_tokens: usize,
        positions: Positions,
    ) -> Result<()> {
        self.stream = TextStream::default();
        let prepared = self.prepared.as_ref().expect("the callers checked the encoding");
        self.t_ask = (self.clock)();
        let gen =
            self.vlm.start_answer_pruned(&prepared.ids, prepared.encoded.features(), keep, deep, positions, max_new_tokens)?;
        self.timings = Timings {
            tiles: prepared.encoded.processed.num_tiles,
            prompt_tokens: gen.prompt_len,
            visual_tokens: prepared.encoded.token_rects.len(),
            kept_tokens: keep.len(),
            positions: positions.name(),
            preprocess_ms: prepared.preprocess_ms,
            encode_ms: prepared.encode_ms,
            ..Timings::default()
        };
        self.gen = Some(gen);
        Ok(())
    }

    /// The next piece of the answer's text, or None when the answer is complete (end of utterance
    /// or `max_new_tokens`). Pieces are never empty.
    pub async fn next_piece(&mut self) -> Result<Option<String>> {
        let Session { vlm, gen, stream, timings, t_ask, t_first, clock, .. } = self;
        let Some(g) = gen.as_mut() else {
            return Ok(None);
        };
        loop {
            let tok = match g.next_token(&vlm.model).await {
                Ok(t) => t,
                Err(e) => {
                    *gen = None;
                    return Err(e);
                }
            };
            let now = clock();
            let Some(tok) = tok else {
                timings.total_ms = Some(now - *t_ask);
                *gen = None;
                return Ok(None);
            };
            timings.tokens += 1;
            timings.kv_cache_bytes = Some(g.kv_cache_bytes());
            if timings.tokens == 1 {
                *t_first = now;
                timings.first_token_ms = Some(now - *t_ask);
            } else if now > *t_first {
                timings.tokens_per_s = Some((timings.tokens - 1) as f64 * 1e3 / (now - *t_first));
            }
            let piece = stream.push(&vlm.tokenizer, tok)?;
            if !piece.is_empty() {
                return Ok(Some(piece));
            }
        }
    }

    /// One held-out scene of an accuracy run (the page's Evaluate panel): decodes `image` (tiled
    /// at most `max_grid` x `max_grid`; 0: the model's own tiling), then
    /// [`crate::accuracy::answer_scene`] for the rows `specs` x `positions` (evaluate's row names:
    /// "zoo", "zoo:sum", "cdpruner:plain", ...; random methods with seed 0, as `evaluate`'s default)
    /// at every ratio, judged by `rule` ("exact" or "word"). The image, ranking and answer this
    /// session holds for the page stay as they are. None when `go_on` stopped it.
    #[allow(clippy::too_many_arguments)]
    pub async fn evaluate_scene<F: std::future::Future<Output = bool>>(
        &mut self,
        image: &[u8],
        max_grid: u32,
        question: &str,
        expected: &str,
        rule: &str,
        specs: &[String],
        positions: &[String],
        ratios: &[f64],
        max_new_tokens: usize,
        go_on: impl FnMut(usize, usize) -> F,
    ) -> Result<Option<crate::accuracy::SceneAnswers>> {
        use crate::accuracy::{answer_scene, MatchRule, Question, Row};
        let rule = MatchRule::parse(rule)?;
        let positions = positions.iter().map(|p| Positions::parse(p)).collect::<Result<Vec<_>>>()?;
        if specs.is_empty() || positions.is_empty() {
            return Err(usage("choose at least one method and one positions setting"));
        }
        if let Some(r) = ratios.iter().find(|r| !(**r > 0.0 && **r <= 1.0)) {
            return Err(usage(format!("a keep ratio must be in (0, 1], got {r}")));
        }
        if ratios.is_empty() || max_new_tokens == 0 {
            return Err(usage("choose at least one keep ratio and one new token"));
        }
        let mut rows = Vec::new();
        for spec in specs {
            rows.extend(Row::parse(spec, 0, &positions)?);
        }
        let img = RgbImage::decode(image)?;
        let question = Question { text: question, expected, rule };
        let grid = if max_grid == 0 { None } else { Some(max_grid as usize) };
        answer_scene(&self.vlm, Some(&self.zoo_plans), &img, grid, &question, &rows, ratios, max_new_tokens, go_on).await
    }

    /// Drops the answer in progress (the Stop button).
    pub fn stop(&mut self) {
        if self.gen.take().is_some() {
            self.timings.total_ms = Some((self.clock)() - self.t_ask);
        }
    }

    /// Timings of the last answer.
    pub fn timings(&self) -> &Timings {
        &self.timings
    }
}
