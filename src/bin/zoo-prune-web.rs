//! zoo-prune-web CLI: `zoo-prune-web answer --model DIR --image FILE --prompt "..."`.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use zoo_prune_web::device::native_device;
use zoo_prune_web::generate::read_floats;
use zoo_prune_web::model::ForwardOptions;
use zoo_prune_web::preprocess::RgbImage;
use zoo_prune_web::prompt::TextStream;
use zoo_prune_web::{Error, ModelFiles, Result, Vlm};

const USAGE: &str = "usage:
  zoo-prune-web answer --model DIR --image FILE --prompt TEXT
                       [--backend flex|wgpu] [--grid N] [--max-new-tokens N] [--chunk N]

  --model DIR         an HF model folder: config.json, model.safetensors, tokenizer.json
                      (preprocessor_config.json and generation_config.json are used if present)
  --grid N            tiling: 1 = one tile, N = up to N x N tiles plus the global image
                      (default: the model's preprocessor_config.json)
  --max-new-tokens N  stop after N tokens (default 64); the answer also stops at <end_of_utterance>
  --chunk N           tiles per vision forward (default 1)";

struct Args {
    model: PathBuf,
    image: PathBuf,
    prompt: String,
    backend: String,
    grid: Option<usize>,
    max_new: usize,
    chunk: usize,
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
    };
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or(format!("{flag} needs a value"));
        let num = |v: String| v.parse::<usize>().map_err(|_| format!("{flag} needs a number, got {v:?}"));
        match flag.as_str() {
            "--model" => model = Some(PathBuf::from(val()?)),
            "--image" => image = Some(PathBuf::from(val()?)),
            "--prompt" => prompt = Some(val()?),
            "--backend" => a.backend = val()?,
            "--grid" => a.grid = Some(num(val()?)?),
            "--max-new-tokens" => a.max_new = num(val()?)?,
            "--chunk" => a.chunk = num(val()?)?,
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    a.model = model.ok_or("--model is required")?;
    a.image = image.ok_or("--image is required")?;
    a.prompt = prompt.ok_or("--prompt is required")?;
    Ok(a)
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn run(a: Args) -> Result<()> {
    let device = native_device(&a.backend)?;
    let t0 = Instant::now();
    let files = ModelFiles::from_dir(&a.model)?;
    let vlm = Vlm::load(&files, &device)?;
    let load_ms = ms(t0);
    let bytes = std::fs::read(&a.image)
        .map_err(|e| Error::Image(format!("cannot read {}: {e}", a.image.display())))?;
    let img = RgbImage::decode(&bytes)?;
    let t = Instant::now();
    let processed = vlm.preprocess(&img, a.grid)?;
    let pre_ms = ms(t);
    let ids = vlm.prompt_ids(&a.prompt, &processed)?;
    let t = Instant::now();
    let encoded = vlm.encode(processed, a.chunk, &[], |_, _| {});
    let features = encoded.features();
    // touch the result so the timer covers the device work
    let _ = pollster::block_on(read_floats(features.clone().narrow(0, 0, 1)))?;
    let encode_ms = ms(t);
    let n_vis = features.dims()[0];
    let t = Instant::now();
    let mut gen = vlm.start_answer(&ids, features, &ForwardOptions::default(), a.max_new)?;
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
         prompt {} tokens ({n_vis} visual) | prefill+first token {prefill_ms:.1} ms | decode {per_tok:.2} ms/token \
         ({:.1} tok/s) over {n} tokens | KV cache {} KiB",
        a.backend,
        encoded.processed.num_tiles,
        ids.len(),
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
