//! Two benchmarks on SmolVLM-256M shapes.
//!
//! 1. Pruning (the default): vision encode per tile, scoring time per method, selection time for
//!    64 and 1088 tokens, and prefill time at keep ratios 1.0 / 0.5 / 0.25 / 0.1, with the targets
//!    of the pruning issue. Random weights made here, or `--model DIR`.
//!
//!      cargo run --release --bin bench -- [--backend flex|wgpu] [--runs N] [--model DIR]
//!
//! 2. `stages`: every stage of an answer, burn against HF transformers on PyTorch, side by side
//!    on the same checkpoint (see stages.rs; scripts/bench-vs-pytorch.sh sets it all up).
//!
//!      cargo run --release --bin bench -- stages --model DIR [--torch PYTHON] [--threads N] ...
//!
//! 3. `write-checkpoint DIR [--500m]`: a SmolVLM-256M-shaped model folder for scripts/bench-web.sh:
//!    the published config.json, tokenizer and processor files (tests/fixtures/smolvlm-256m-instruct/)
//!    and random bf16 weights in the hub's layout (513 MB). `--500m`: SmolVLM-500M's decoder sizes
//!    in that config (hidden 960, intermediate 2560, 32 layers, 15 heads, 5 KV heads; the same
//!    vision encoder, tokenizer and processor: ../shared's SOURCE.md), about 1.02 GB.
//!
//! Medians of N runs (default 3) after one warm-up. Every timer ends with a readback so the device
//! work is inside it.

mod stages;

use std::time::Instant;

use burn::tensor::{Distribution, Tensor};
use zoo_prune_web::device::native_device;
use zoo_prune_web::readback::read_floats;
use zoo_prune_web::prune::select::{cosine_matrix, divprune_order, sads_order, Fusion};
use zoo_prune_web::prune::{rank, zoo, BudgetMode, Method, Positions, PruneInputs, ZooParams};
use zoo_prune_web::random_weights::{random_checkpoint, smolvlm_256m_config};
use zoo_prune_web::{ModelFiles, Vlm};

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Median ms of `runs` runs after one warm-up.
pub fn time(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect(),
    )
}

fn sync<const D: usize>(t: Tensor<D>) {
    let n = t.shape().num_elements();
    let v = pollster::block_on(read_floats(t.reshape([n]).narrow(0, 0, 1))).unwrap();
    std::hint::black_box(v);
}

/// The published SmolVLM-256M-Instruct files (weights excepted) and random bf16 weights in `dir`.
fn write_checkpoint(dir: &std::path::Path, smolvlm_500m: bool) {
    let published = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smolvlm-256m-instruct");
    std::fs::create_dir_all(dir).unwrap();
    for f in ["config.json", "tokenizer.json", "preprocessor_config.json", "generation_config.json"] {
        std::fs::copy(published.join(f), dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    if smolvlm_500m {
        let mut c: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
        let t = &mut c["text_config"];
        for (k, v) in [("hidden_size", 960), ("intermediate_size", 2560), ("num_hidden_layers", 32), ("num_attention_heads", 15), ("num_key_value_heads", 5)] {
            t[k] = v.into();
        }
        std::fs::write(dir.join("config.json"), serde_json::to_vec_pretty(&c).unwrap()).unwrap();
    }
    let cfg = zoo_prune_web::Idefics3Config::from_json(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    let t = Instant::now();
    let bytes = random_checkpoint(&cfg, 0);
    std::fs::write(dir.join("model.safetensors"), &bytes).unwrap();
    eprintln!("{}: published SmolVLM-256M-Instruct config{} + tokenizer, random bf16 weights ({} bytes) in {:.1} s",
        dir.display(), if smolvlm_500m { " with SmolVLM-500M's decoder sizes" } else { "" }, bytes.len(), t.elapsed().as_secs_f64());
}

const USAGE: &str = "usage: bench [--backend flex|wgpu] [--runs N] [--model DIR]
       bench stages --model DIR ... (bench stages --help)
       bench write-checkpoint DIR [--500m]";

fn main() {
    use lexopt::prelude::*;
    let fail = |e: lexopt::Error| -> ! {
        eprintln!("{e}\n{USAGE}");
        std::process::exit(2)
    };
    let mut p = lexopt::Parser::from_env();
    let (mut backend, mut runs, mut model_dir) = ("flex".to_string(), 3usize, None::<std::path::PathBuf>);
    let mut first = true;
    while let Some(arg) = p.next().unwrap_or_else(|e| fail(e)) {
        let value = |p: &mut lexopt::Parser| p.value().unwrap_or_else(|e| fail(e));
        match arg {
            Value(cmd) if first && cmd == "stages" => {
                let rest = p.raw_args().unwrap_or_else(|e| fail(e));
                stages::main(rest.map(|a| a.to_string_lossy().into_owned()).collect());
                return;
            }
            Value(cmd) if first && cmd == "write-checkpoint" => {
                let dir = std::path::PathBuf::from(value(&mut p));
                let big = match p.next().unwrap_or_else(|e| fail(e)) {
                    None => false,
                    Some(Long("500m")) => true,
                    Some(other) => fail(other.unexpected()),
                };
                write_checkpoint(&dir, big);
                return;
            }
            Long("backend") => backend = value(&mut p).string().unwrap_or_else(|e| fail(e)),
            Long("runs") => runs = value(&mut p).parse().unwrap_or_else(|e| fail(e)),
            Long("model") => model_dir = Some(value(&mut p).into()),
            Short('h') | Long("help") => {
                println!("{USAGE}");
                return;
            }
            other => fail(other.unexpected()),
        }
        first = false;
    }
    let device = native_device(&backend).unwrap_or_else(|e| panic!("{e}"));
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = match &model_dir {
        Some(d) => ModelFiles::from_dir(d).unwrap(),
        None => {
            let tokenizer = std::fs::read(root.join("tests/fixtures/tokenizer/tokenizer.json")).unwrap();
            let tok = tokenizers::Tokenizer::from_bytes(&tokenizer).unwrap();
            let config = smolvlm_256m_config(tok.token_to_id("<image>").unwrap());
            let cfg = zoo_prune_web::Idefics3Config::from_json(config.as_bytes()).unwrap();
            let t = Instant::now();
            let safetensors = random_checkpoint(&cfg, 0);
            eprintln!("random SmolVLM-256M-shaped checkpoint: {} MB in {:.1} s", safetensors.len() >> 20, t.elapsed().as_secs_f64());
            ModelFiles { config: config.into_bytes(), safetensors, tokenizer, preprocessor: None, generation: None }
        }
    };
    let vlm = Vlm::load(&files, &device).unwrap();
    drop(files);
    let vc = vlm.config.vision_config.clone();
    let (tile, dv, dt) = (vc.image_size, vc.hidden_size, vlm.config.text_config.hidden_size);
    let per_tile = vlm.image_seq_len();
    let tiles = 17usize;
    let n_vis = tiles * per_tile;
    println!("# zoo-prune-web pruning benchmark");
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("backend {backend}, {cores} cores (flex uses them all through rayon), median of {runs} runs after a warm-up");
    println!(
        "model: {} (vision {}x{} tiles, {} tokens/tile; text hidden {dt}, {} layers)",
        model_dir.as_ref().map_or("random SmolVLM-256M shapes".into(), |d| d.display().to_string()),
        tile,
        tile,
        per_tile,
        vlm.config.text_config.num_hidden_layers
    );

    // 1. vision encode, one tile
    let px = Tensor::<4>::random([1, 3, tile, tile], Distribution::Uniform(-1.0, 1.0), &device);
    let enc_ms = time(runs, || sync(vlm.model.encode(px.clone(), &[]).features));
    println!("\n| stage | ms | note |\n| --- | ---: | --- |");
    println!("| vision encode, 1 tile | {enc_ms:.1} | {tiles} tiles (4x4 + global): {:.0} ms |", enc_ms * tiles as f64);

    // 2. scoring per method on 17 tiles (random encoder states of the right shape)
    let pre_ln = Tensor::<3>::random([tiles, vc.num_patches(), dv], Distribution::Normal(0.0, 1.0), &device);
    let features = Tensor::<3>::random([tiles, per_tile, dt], Distribution::Normal(0.0, 1.0), &device);
    let zoo_ms = time(runs, || sync(zoo::sensitivity(&vlm.model, &pre_ln, &ZooParams::default())));
    let ratio = zoo_ms / (enc_ms * tiles as f64);
    println!(
        "| ZOO sensitivity (JVP, m 64), {n_vis} tokens | {zoo_ms:.1} | {:.2} % of encoding {tiles} tiles (target <= 5 %: {}) |",
        100.0 * ratio,
        if ratio <= 0.05 { "met" } else { "MISSED" }
    );
    let fd1 = time(1.max(runs / 3), || {
        let p = ZooParams { estimator: zoo::Estimator::FiniteDifference, m: 16, ..Default::default() };
        sync(zoo::sensitivity(&vlm.model, &pre_ln.clone().narrow(0, 0, 1), &p))
    });
    println!("| ZOO literal finite differences, m 16, 1 tile | {fd1:.1} | the reference estimator, not used by the page |");
    let ids: Vec<u32> = {
        let q = vlm.tokenizer.encode("What is in this image?").unwrap();
        let mut v = vec![1u32; 8];
        v.extend(std::iter::repeat(vlm.config.image_token_id).take(n_vis));
        v.extend(q);
        v
    };
    let q_ids = vlm.tokenizer.encode("What is in this image?").unwrap();
    let atts: Vec<(usize, Tensor<3>)> = vec![];
    let inputs = PruneInputs {
        model: &vlm.model,
        features: &features,
        pre_ln: &pre_ln,
        pre_mlp: None,
        vision_attentions: &atts,
        prompt_ids: Some(&ids),
        image_token_id: vlm.config.image_token_id,
        question_ids: Some(&q_ids),
        // every run makes the plan anew: the figure is a first ranking's
        zoo_plans: None,
    };
    for name in ["zoo", "divprune", "prompt-aware", "random", "feature-norm", "fastv"] {
        let m = Method::by_name(name, 0).unwrap();
        let ms = time(runs, || {
            std::hint::black_box(pollster::block_on(rank(&m, &inputs, BudgetMode::PerTile)).unwrap());
        });
        println!("| rank() {name}, per-tile, {n_vis} tokens | {ms:.1} | scores + readback + greedy order |");
    }
    let vz_ms = time(runs, || {
        let e = vlm.model.encode(px.clone(), &[vc.num_hidden_layers - 1]);
        sync(e.attentions[0].1.clone())
    });
    println!("| visionzip: encode 1 tile with its attention map | {vz_ms:.1} | vs {enc_ms:.1} without: the score's cost |");

    // 3. selection alone (the greedy loop on the CPU), 64 and 1088 tokens
    let z: Vec<f64> = pollster::block_on(read_floats(features.clone().reshape([n_vis, dt])))
        .unwrap()
        .into_iter()
        .map(|v| v as f64)
        .collect();
    let s: Vec<f64> = (0..n_vis).map(|i| ((i * 7919) % 1000) as f64 / 1000.0).collect();
    for n in [per_tile, n_vis] {
        let cos_ms = time(runs, || {
            std::hint::black_box(cosine_matrix(&z[..n * dt], n, dt));
        });
        let cos = cosine_matrix(&z[..n * dt], n, dt);
        let sads_ms = time(runs, || {
            std::hint::black_box(sads_order(&s[..n], &cos, Fusion::Multiply));
        });
        let div_ms = time(runs, || {
            std::hint::black_box(divprune_order(&cos, n));
        });
        let note = if n == n_vis {
            format!("target < 10 ms: {}", if sads_ms < 10.0 { "met" } else { "MISSED" })
        } else {
            String::new()
        };
        println!("| selection SADS, {n} tokens (full order) | {sads_ms:.2} | {note} |");
        println!("| selection DivPrune, {n} tokens | {div_ms:.2} | |");
        println!("| cosine matrix (f64, CPU), {n} tokens | {cos_ms:.1} | input of both loops |");
    }

    // 4. prefill at keep ratios, 1088 visual tokens + the text
    let all = features.reshape([n_vis, dt]);
    let mut full = 0.0;
    for r in [1.0, 0.5, 0.25, 0.1] {
        let k = ((n_vis as f64) * r).round() as usize;
        let keep: Vec<usize> = (0..n_vis).step_by((n_vis / k).max(1)).take(k).collect();
        let ms = time(runs, || {
            let mut g = vlm.start_answer_pruned(&ids, all.clone(), &keep, None, Positions::Renumber, 1).unwrap();
            std::hint::black_box(pollster::block_on(g.next_token(&vlm.model)).unwrap());
        });
        if r == 1.0 {
            full = ms;
        }
        let target = (r + 0.1) * full;
        println!(
            "| prefill + first token, keep {:>3.0} % ({} prompt tokens) | {ms:.1} | {:.2} x full (target <= {:.2}: {}) |",
            r * 100.0,
            ids.len() - (n_vis - keep.len()),
            ms / full,
            r + 0.1,
            if ms <= target + 1e-9 { "met" } else { "MISSED" }
        );
    }
}
