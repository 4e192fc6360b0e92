//! zoo-prune-web CLI: `zoo-prune-web answer --model DIR --image FILE --prompt "..."`.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use pollster::block_on;
use zoo_prune_web::device::{native_device, native_load_options};
use zoo_prune_web::overlay::overlay_png;
use zoo_prune_web::preprocess::{Rect, RgbImage};
use zoo_prune_web::prune::{budget, MethodParams, Positions};
use zoo_prune_web::session::{native_clock, Session};
use zoo_prune_web::{Error, Result, Vlm};

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
                      (0 or absent: the model's preprocessor_config.json)
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
    grid: Option<u32>,
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

fn parse(args: impl IntoIterator<Item = String>) -> std::result::Result<Args, lexopt::Error> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    match p.next()? {
        Some(Value(c)) if c == "answer" => {}
        Some(Short('h') | Long("help")) => {
            println!("{USAGE}");
            std::process::exit(0);
        }
        Some(Value(c)) => return Err(format!("unknown command {:?}", c.to_string_lossy()).into()),
        Some(other) => return Err(other.unexpected()),
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
    while let Some(arg) = p.next()? {
        match arg {
            Long("model") => model = Some(PathBuf::from(p.value()?)),
            Long("image") => image = Some(PathBuf::from(p.value()?)),
            Long("prompt") => prompt = Some(p.value()?.string()?),
            Long("backend") => a.backend = p.value()?.string()?,
            Long("grid") => a.grid = Some(p.value()?.parse()?),
            Long("max-new-tokens") => a.max_new = p.value()?.parse()?,
            Long("chunk") => a.chunk = p.value()?.parse()?,
            Long("method") => a.method = Some(p.value()?.string()?),
            Long("keep") => a.keep = p.value()?.string()?,
            Long("seed") => a.params.seed = Some(p.value()?.parse()?),
            Long("budget") => a.budget = p.value()?.string()?,
            Long("positions") => a.positions = Positions::parse(&p.value()?.string()?).map_err(|e| e.to_string())?,
            Long("fusion") => a.params.fusion = Some(p.value()?.string()?),
            Long("m") => a.params.m = Some(p.value()?.parse()?),
            Long("h") => a.params.h = Some(p.value()?.parse()?),
            Long("proxy") => a.params.proxy = Some(p.value()?.string()?),
            Long("core-share") => a.params.core_share = Some(p.value()?.parse()?),
            Long("layer") => a.params.layer = Some(p.value()?.parse()?),
            Long("deep-layer") => a.params.deep_layer = Some(p.value()?.parse()?),
            Long("deep-keep") => a.params.deep_keep = Some(p.value()?.parse()?),
            Long("relevance") => a.params.relevance = Some(p.value()?.string()?),
            Long("overlay") => a.overlay = Some(PathBuf::from(p.value()?)),
            Long("ranking-json") => a.ranking_json = Some(PathBuf::from(p.value()?)),
            Short('h') | Long("help") => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(arg.unexpected()),
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

/// The page's orchestration (`Session`: encode, rank, keep, answer), driven from the command line.
fn run(a: Args) -> Result<()> {
    let device = native_device(&a.backend)?;
    let t0 = Instant::now();
    let vlm = Vlm::open(&a.model, &device, &native_load_options(&a.backend)?)?;
    let load_ms = ms(t0);
    let bytes = std::fs::read(&a.image)
        .map_err(|e| Error::Image(format!("cannot read {}: {e}", a.image.display())))?;
    let mut session = Session::new(vlm, native_clock);
    session.set_chunk(a.chunk);
    let encoding = block_on(session.encode(&bytes, &a.prompt, a.grid.unwrap_or(0), |_, _| {}))?;
    let n_vis = encoding.visual_tokens;
    let keep = match &a.method {
        Some(name) => {
            let report = block_on(session.rank(name, &a.params, &a.budget))?;
            for w in &report.warnings {
                eprintln!("warning: {w}");
            }
            let k = parse_keep(&a.keep, n_vis)?;
            let keep = session.kept(k)?;
            if let Some(path) = &a.ranking_json {
                let j = serde_json::json!({
                    "method": report.method,
                    "order": report.order,
                    "scores": report.scores,
                    "warnings": report.warnings,
                    "keep": keep,
                });
                std::fs::write(path, j.to_string())
                    .map_err(|e| Error::Other(format!("cannot write {}: {e}", path.display())))?;
            }
            eprintln!(
                "pruning: {} keeps {k}/{n_vis} visual tokens ({:.1} %), ranking {:.1} ms{}",
                report.method,
                100.0 * k as f64 / n_vis as f64,
                report.rank_ms,
                report
                    .deep_drop
                    .as_ref()
                    .map(|d| format!(", random drop to {:.0} % at LLM layer {}", d.keep * 100.0, d.layer))
                    .unwrap_or_default()
            );
            session.answer(k, a.max_new, a.positions)?;
            keep
        }
        None => {
            session.answer_unpruned(a.max_new, a.positions)?;
            (0..n_vis).collect()
        }
    };
    if let Some(path) = &a.overlay {
        let mut kept = vec![false; n_vis];
        for &k in &keep {
            kept[k] = true;
        }
        let rects: Vec<Rect> = encoding.token_rects.iter().map(|&[x, y, w, h]| Rect { x, y, w, h }).collect();
        let png = overlay_png(&RgbImage::decode(&bytes)?, &rects, &kept, encoding.grid_tokens)?;
        std::fs::write(path, png).map_err(|e| Error::Other(format!("cannot write {}: {e}", path.display())))?;
        eprintln!("overlay written to {}", path.display());
    }
    let mut out = std::io::stdout();
    while let Some(piece) = block_on(session.next_piece())? {
        print!("{piece}");
        out.flush().ok();
    }
    println!();
    let t = session.timings();
    let per_tok = t.tokens_per_s.map_or(0.0, |s| 1e3 / s);
    eprintln!(
        "backend {} | load {load_ms:.0} ms | preprocess {:.1} ms | encode {} tiles {:.1} ms | \
         prompt {} tokens ({} of {n_vis} visual kept) | prefill+first token {:.1} ms | decode {per_tok:.2} ms/token \
         ({:.1} tok/s) over {} tokens | KV cache {} KiB",
        a.backend,
        t.preprocess_ms,
        t.tiles,
        t.encode_ms,
        t.prompt_tokens,
        t.kept_tokens,
        t.first_token_ms.or(t.total_ms).unwrap_or(0.0),
        t.tokens_per_s.unwrap_or(0.0),
        t.tokens,
        t.kv_cache_bytes.unwrap_or(0) / 1024
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
