//! zoo-prune-web CLI: `zoo-prune-web answer --model DIR --image FILE --prompt "..."`.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use zoo_prune_web::device::{native_device, native_load_options};
use zoo_prune_web::readback::read_floats;
use zoo_prune_web::overlay::overlay_png;
use zoo_prune_web::prune::{budget, rank, BudgetMode, Method, MethodParams, Positions, PruneInputs};
use zoo_prune_web::preprocess::RgbImage;
use zoo_prune_web::prompt::TextStream;
use zoo_prune_web::{Error, ModelFiles, Result, Vlm};

const USAGE: &str = "usage:
  zoo-prune-web answer --model DIR --image FILE --prompt TEXT
                       [--backend flex|wgpu] [--grid N] [--max-new-tokens N] [--chunk N]
                       [--method NAME --keep R|K [--seed N] [--budget per-tile|global]
                        [--fusion multiply|sum|none] [--m N] [--h X] [--proxy P]
                        [--core-share X] [--layer N] [--deep-layer N] [--deep-keep X]
                        [--relevance negated|plain]
                        [--positions renumber|keep] [--overlay FILE.png] [--ranking-json FILE]]

  --model DIR         an HF model folder: config.json, model.safetensors, tokenizer.json
                      (preprocessor_config.json and generation_config.json are used if present)
  --grid N            tiling: 1 = one tile, N = up to N x N tiles plus the global image
                      (default: the model's preprocessor_config.json)
  --max-new-tokens N  stop after N tokens (default 64); the answer also stops at <end_of_utterance>
  --chunk N           tiles per vision forward (default 1)
  --method NAME       prune visual tokens first: zoo, divprune, prompt-aware, random, visionzip,
                      fastv, info-horizon, feature-norm, cdpruner (default: keep every token)
  --keep R|K          keep ratio (0.25, 25%) or a token count (an integer > 1); default 1.0
  --seed N            seed of ZOO's directions and of the random methods (default 0)
  --budget MODE       per-tile (default: equal share per tile) or global
  --fusion F          ZOO's fusion of sensitivity and diversity: multiply (default), sum, none
  --m N, --h X        ZOO's number of directions (64) and step (0.01)
  --proxy P           ZOO's perturbed map: post-ln (default), last-mlp (the last encoder MLP block
                      too; literal finite differences, slow: use --m 8), linear (the bare connector:
                      constant sensitivity, flagged)
  --core-share X      prompt-aware: share of the budget picked by relevance (0.6)
  --layer N           visionzip: vision encoder layer (the last); fastv: LLM layer (2)
  --deep-layer N, --deep-keep X
                      info-horizon: LLM layer of the random drop (2/3 of the depth) and the
                      share it keeps (0.5)
  --relevance S       cdpruner: the relevance's sign, negated (the official code's) or plain
                      A parameter given for a method it does not apply to is an error (the page's
                      parameter object is checked by the same code: prune::MethodParams).
  --positions P       renumber (default: the kept tokens get positions 0..L-1, as the seeds' code)
                      or keep (each kept token keeps its position in the full prompt)
  --overlay FILE.png  write kept (outlined) and pruned (dimmed) tokens over the image
  --ranking-json FILE write the ranking (method, order, scores, kept tokens) as JSON";

struct Args {
    model: PathBuf,
    image: PathBuf,
    prompt: String,
    backend: String,
    grid: Option<usize>,
    max_new: usize,
    chunk: usize,
    method: Option<String>,
    keep: String,
    params: MethodParams,
    positions: Positions,
    budget: String,
    overlay: Option<PathBuf>,
    ranking_json: Option<PathBuf>,
}

fn parse(mut it: impl Iterator<Item = String>) -> std::result::Result<Args, String> {
    match it.next().as_deref() {
        Some("answer") => {}
        Some(other) => return Err(format!("unknown command {other:?}")),
        None => return Err("missing command".into()),
    }
    let (mut model, mut image, mut prompt) = (None, None, None);
    let mut a = Args {
        model: PathBuf::new(),
        image: PathBuf::new(),
        prompt: String::new(),
        backend: "flex".into(),
        grid: None,
        max_new: 64,
        chunk: 1,
        method: None,
        keep: "1.0".into(),
        params: MethodParams::default(),
        positions: Positions::Renumber,
        budget: "per-tile".into(),
        overlay: None,
        ranking_json: None,
    };
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or(format!("{flag} needs a value"));
        let num = |v: String| v.parse::<usize>().map_err(|_| format!("{flag} needs a number, got {v:?}"));
        let real = |v: String| v.parse::<f64>().map_err(|_| format!("{flag} needs a number, got {v:?}"));
        match flag.as_str() {
            "--model" => model = Some(PathBuf::from(val()?)),
            "--image" => image = Some(PathBuf::from(val()?)),
            "--prompt" => prompt = Some(val()?),
            "--backend" => a.backend = val()?,
            "--grid" => a.grid = Some(num(val()?)?),
            "--max-new-tokens" => a.max_new = num(val()?)?,
            "--chunk" => a.chunk = num(val()?)?,
            "--method" => a.method = Some(val()?),
            "--keep" => a.keep = val()?,
            "--seed" => a.params.seed = Some(num(val()?)? as u64),
            "--budget" => a.budget = val()?,
            "--positions" => a.positions = Positions::parse(&val()?).map_err(|e| e.to_string())?,
            "--fusion" => a.params.fusion = Some(val()?),
            "--m" => a.params.m = Some(num(val()?)? as u64),
            "--h" => a.params.h = Some(real(val()?)?),
            "--proxy" => a.params.proxy = Some(val()?),
            "--core-share" => a.params.core_share = Some(real(val()?)?),
            "--layer" => a.params.layer = Some(num(val()?)? as u64),
            "--deep-layer" => a.params.deep_layer = Some(num(val()?)? as u64),
            "--deep-keep" => a.params.deep_keep = Some(real(val()?)?),
            "--relevance" => a.params.relevance = Some(val()?),
            "--overlay" => a.overlay = Some(PathBuf::from(val()?)),
            "--ranking-json" => a.ranking_json = Some(PathBuf::from(val()?)),
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    a.model = model.ok_or("--model is required")?;
    a.image = image.ok_or("--image is required")?;
    a.prompt = prompt.ok_or("--prompt is required")?;
    Ok(a)
}

/// "0.25" / "25%" -> a ratio; "40" -> a count.
fn parse_keep(v: &str, n: usize) -> Result<usize> {
    let bad = || Error::Other(format!("--keep needs a ratio (0.25, 25%) or a count, got {v:?}"));
    if let Some(p) = v.strip_suffix('%') {
        let r: f64 = p.parse().map_err(|_| bad())?;
        return Ok(budget(n, r / 100.0));
    }
    if !v.contains('.') {
        let k: usize = v.parse().map_err(|_| bad())?;
        if k > 1 {
            return Ok(k.min(n));
        }
    }
    let r: f64 = v.parse().map_err(|_| bad())?;
    if !(r > 0.0 && r <= 1.0) {
        return Err(bad());
    }
    Ok(budget(n, r))
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn run(a: Args) -> Result<()> {
    let device = native_device(&a.backend)?;
    let t0 = Instant::now();
    let files = ModelFiles::from_dir(&a.model)?;
    let vlm = Vlm::load_with(&files, &device, &native_load_options(&a.backend)?)?;
    let load_ms = ms(t0);
    let bytes = std::fs::read(&a.image)
        .map_err(|e| Error::Image(format!("cannot read {}: {e}", a.image.display())))?;
    let img = RgbImage::decode(&bytes)?;
    let t = Instant::now();
    let processed = vlm.preprocess(&img, a.grid)?;
    let pre_ms = ms(t);
    let ids = vlm.prompt_ids(&a.prompt, &processed)?;
    let method = match &a.method {
        Some(name) => Some(a.params.build(name, &vlm.config)?),
        None => None,
    };
    let att_layers: Vec<usize> = match method {
        Some(Method::VisionZip { layer: Some(layer) }) => vec![layer],
        _ => vec![],
    };
    let t = Instant::now();
    let encoded = vlm.encode(processed, a.chunk, &att_layers, |_, _| {});
    let features = encoded.features();
    // touch the result so the timer covers the device work
    let _ = pollster::block_on(read_floats(features.clone().narrow(0, 0, 1)))?;
    let encode_ms = ms(t);
    let n_vis = features.dims()[0];
    let mut keep: Vec<usize> = (0..n_vis).collect();
    let mut deep = None;
    if let Some(method) = &method {
        let budget_mode = BudgetMode::parse(&a.budget)?;
        let k = parse_keep(&a.keep, n_vis)?;
        let q_ids = vlm.tokenizer.question_ids(&a.prompt)?;
        let t = Instant::now();
        let inputs = PruneInputs::new(&vlm.model, &encoded.tiles, vlm.config.image_token_id, &ids, &q_ids);
        let ranking = pollster::block_on(rank(method, &inputs, budget_mode))?;
        let rank_ms = ms(t);
        for w in &ranking.warnings {
            eprintln!("warning: {w}");
        }
        keep = ranking.keep(k);
        if let Some(path) = &a.ranking_json {
            let finite = |v: &f64| if v.is_finite() { serde_json::json!(v) } else { serde_json::Value::Null };
            let j = serde_json::json!({
                "method": ranking.method,
                "order": ranking.order,
                "scores": ranking.scores.iter().map(finite).collect::<Vec<_>>(),
                "warnings": ranking.warnings,
                "keep": keep,
            });
            std::fs::write(path, j.to_string())
                .map_err(|e| Error::Other(format!("cannot write {}: {e}", path.display())))?;
        }
        deep = ranking.deep_drop.clone();
        eprintln!(
            "pruning: {} keeps {k}/{n_vis} visual tokens ({:.1} %), ranking {rank_ms:.1} ms{}",
            ranking.method,
            100.0 * k as f64 / n_vis as f64,
            deep.as_ref().map(|d| format!(", random drop to {:.0} % at LLM layer {}", d.keep * 100.0, d.layer)).unwrap_or_default()
        );
    }
    if let Some(path) = &a.overlay {
        let mut kept = vec![false; n_vis];
        for &k in &keep {
            kept[k] = true;
        }
        let p = &encoded.processed;
        let grid = if p.rows * p.cols > 0 { p.rows * p.cols * vlm.image_seq_len() } else { n_vis };
        let png = overlay_png(&img, &encoded.token_rects, &kept, grid)?;
        std::fs::write(path, png).map_err(|e| Error::Other(format!("cannot write {}: {e}", path.display())))?;
        eprintln!("overlay written to {}", path.display());
    }
    let t = Instant::now();
    let mut gen = vlm.start_answer_pruned(&ids, features, &keep, deep.as_ref(), a.positions, a.max_new)?;
    let mut stream = TextStream::default();
    let mut first_ms = None;
    let mut out = std::io::stdout();
    while let Some(tok) = pollster::block_on(gen.next_token(&vlm.model))? {
        if first_ms.is_none() {
            first_ms = Some(ms(t));
        }
        let piece = stream.push(&vlm.tokenizer, tok)?;
        print!("{piece}");
        out.flush().ok();
    }
    let total_ms = ms(t);
    println!();
    let n = gen.produced.len();
    let prefill_ms = first_ms.unwrap_or(total_ms);
    let per_tok = if n > 1 { (total_ms - prefill_ms) / (n - 1) as f64 } else { 0.0 };
    eprintln!(
        "backend {} | load {load_ms:.0} ms | preprocess {pre_ms:.1} ms | encode {} tiles {encode_ms:.1} ms | \
         prompt {} tokens ({} of {n_vis} visual kept) | prefill+first token {prefill_ms:.1} ms | decode {per_tok:.2} ms/token \
         ({:.1} tok/s) over {n} tokens | KV cache {} KiB",
        a.backend,
        encoded.processed.num_tiles,
        gen.prompt_len,
        keep.len(),
        if per_tok > 0.0 { 1e3 / per_tok } else { 0.0 },
        gen.kv_cache_bytes() / 1024
    );
    Ok(())
}

fn main() {
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(args) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
