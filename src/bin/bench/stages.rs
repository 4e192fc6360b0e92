//! `bench stages`: the cost of every stage of an answer, burn against HF transformers on PyTorch,
//! on the same checkpoint and the same thread count, printed side by side in one run.
//!
//!   bench stages --model DIR [--torch PYTHON] [--torch-device cpu|cuda] [--threads N] [--runs N]
//!                [--backends flex,wgpu] [--tiles 17] [--decode-tokens 32] [--json FILE]
//!
//! Each burn backend runs in a child process of its own (this binary, `stages --child NAME`), with
//! RAYON_NUM_THREADS = --threads, so that its peak memory is its own; the PyTorch side is
//! scripts/bench_torch.py run by PYTHON with torch.set_num_threads(--threads). Both sides time the
//! same work the same way (see bench_torch.py's docstring for the stage list): medians of --runs
//! runs after one warm-up, each timer ending with a readback.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Distribution, Tensor};
use serde_json::{json, Value};
use zoo_prune_web::device::native_device;
use zoo_prune_web::generate::Generation;
use zoo_prune_web::readback::read_floats;
use zoo_prune_web::model::ForwardOptions;
use zoo_prune_web::prune::{zoo, ZooParams};
use zoo_prune_web::Vlm;

use super::{median, time};

struct Opts {
    model: String,
    threads: usize,
    runs: usize,
    backends: Vec<String>,
    torch: Option<String>,
    torch_device: String,
    tiles: usize,
    text_tokens: usize,
    decode_tokens: usize,
    ratios: Vec<f64>,
    json: Option<String>,
    child: Option<String>,
    /// Only these stages (encode, connector, zoo, prefill, decode): for profiling one of them.
    only: Option<Vec<String>>,
    /// Rounds of (every burn backend, then PyTorch), alternated: a host that drifts during the
    /// call lands in one round's pair, not in every ratio.
    rounds: usize,
}

const USAGE: &str = "usage: bench stages --model DIR [--torch PYTHON] [--torch-device cpu|cuda] [--threads N] \
[--runs N] [--backends flex,wgpu] [--ratios 1,0.5,0.25,0.1] [--only STAGES: encode,kernels,connector,zoo,prefill,decode (burn's side; load and memory always: `--only load` times the load alone)] [--tiles N] [--text-tokens N] [--decode-tokens N] [--rounds N: the sides alternated N times, each cell then \"round 1 / round 2 / ...\", ratios pair by pair] [--json FILE]";

fn parse(args: Vec<String>) -> Opts {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mut o = Opts {
        model: String::new(),
        threads: cores,
        runs: 3,
        backends: vec!["flex".into()],
        torch: None,
        torch_device: "cpu".into(),
        tiles: 17,
        text_tokens: 24,
        decode_tokens: 32,
        ratios: vec![1.0, 0.5, 0.25, 0.1],
        json: None,
        child: None,
        only: None,
        rounds: 1,
    };
    let parsed = (|| -> Result<(), lexopt::Error> {
        use lexopt::prelude::*;
        let mut p = lexopt::Parser::from_args(args);
        let list = |v: String| v.split(',').map(String::from).collect::<Vec<_>>();
        while let Some(arg) = p.next()? {
            match arg {
                Long("model") => o.model = p.value()?.string()?,
                Long("threads") => o.threads = p.value()?.parse()?,
                Long("runs") => o.runs = p.value()?.parse::<usize>()?.max(1),
                Long("backends") => o.backends = list(p.value()?.string()?),
                Long("torch") => o.torch = Some(p.value()?.string()?),
                Long("torch-device") => o.torch_device = p.value()?.string()?,
                Long("tiles") => o.tiles = p.value()?.parse::<usize>()?.max(1),
                Long("text-tokens") => o.text_tokens = p.value()?.parse::<usize>()?.max(1),
                Long("decode-tokens") => o.decode_tokens = p.value()?.parse::<usize>()?.max(1),
                Long("json") => o.json = Some(p.value()?.string()?),
                Long("child") => o.child = Some(p.value()?.string()?),
                Long("only") => o.only = Some(list(p.value()?.string()?)),
                Long("rounds") => o.rounds = p.value()?.parse::<usize>()?.max(1),
                Long("ratios") => {
                    o.ratios = list(p.value()?.string()?)
                        .iter()
                        .map(|v| v.parse::<f64>().ok().filter(|r| *r > 0.0 && *r <= 1.0))
                        .collect::<Option<Vec<f64>>>()
                        .ok_or("--ratios wants keep ratios in (0, 1], e.g. 1,0.5,0.25,0.1")?
                }
                Short('h') | Long("help") => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                _ => return Err(arg.unexpected()),
            }
        }
        Ok(())
    })();
    if let Err(e) = parsed {
        eprintln!("{e}\n{USAGE}");
        std::process::exit(2);
    }
    if o.model.is_empty() {
        eprintln!("--model DIR is required (a SmolVLM-shaped checkpoint both sides load; make one with\n  python tests/fixtures/make_fixtures.py --smolvlm256m DIR, or run scripts/bench-vs-pytorch.sh)\n{USAGE}");
        std::process::exit(2);
    }
    o
}

pub fn main(args: Vec<String>) {
    let o = parse(args);
    match &o.child {
        Some(backend) => {
            let r = child(&o, backend);
            println!("{r}");
        }
        None => coordinate(&o),
    }
}

fn vm_hwm_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn read_all<const D: usize>(t: Tensor<D>) {
    let n = t.shape().num_elements();
    std::hint::black_box(pollster::block_on(read_floats(t.reshape([n]))).unwrap());
}

fn read_one<const D: usize>(t: Tensor<D>) {
    let n = t.shape().num_elements();
    std::hint::black_box(pollster::block_on(read_floats(t.reshape([n]).narrow(0, 0, 1))).unwrap());
}

/// One backend's figures, as JSON with the same keys as bench_torch.py's.
fn child(o: &Opts, backend: &str) -> Value {
    let device = native_device(backend).unwrap_or_else(|e| panic!("{e}"));
    let t = Instant::now();
    let opts = zoo_prune_web::device::native_load_options(backend).unwrap_or_else(|e| panic!("{e}"));
    let vlm = Vlm::open(std::path::Path::new(&o.model), &device, &opts).unwrap_or_else(|e| panic!("{e}"));
    let load_s = t.elapsed().as_secs_f64();
    let model = &vlm.model;
    let vc = vlm.config.vision_config.clone();
    let dt = vlm.config.text_config.hidden_size;
    let per_tile = vlm.image_seq_len();
    let n_vis = o.tiles * per_tile;
    let runs = o.runs;

    let px = Tensor::<4>::random([1, 3, vc.image_size, vc.image_size], Distribution::Uniform(-1.0, 1.0), &device);
    let on = |stage: &str| o.only.as_ref().is_none_or(|v| v.iter().any(|x| x == stage));
    let timed = |stage: &str, f: &mut dyn FnMut()| if on(stage) { Some(time(runs, f)) } else { None };
    let encode_ms = timed("encode", &mut || {
        let out = model.vision.forward(px.clone(), &[]);
        read_one(model.vision.post_layernorm.forward(out.last_hidden))
    });
    // two kernels of the encoder alone (as bench_torch.py): fc1's matmul and one tile's attention
    let n_p = vc.num_patches();
    let xm = Tensor::<3>::random([1, n_p, vc.hidden_size], Distribution::Normal(0.0, 1.0), &device);
    let wm = Tensor::<3>::random([1, vc.hidden_size, vc.intermediate_size], Distribution::Normal(0.0, 1.0), &device);
    let matmul_ms = timed("kernels", &mut || read_one(xm.clone().matmul(wm.clone())));
    let hd = vc.hidden_size / vc.num_attention_heads;
    let qkv: Vec<Tensor<4>> = (0..3)
        .map(|_| Tensor::<4>::random([1, vc.num_attention_heads, n_p, hd], Distribution::Normal(0.0, 1.0), &device))
        .collect();
    // the kernel the model runs (on flex: src/cpu/attention.rs), and burn's own fused op beside it
    let attention_burn_ms = timed("kernels", &mut || {
        let opts = AttentionModuleOptions { scale: None, softcap: None, is_causal: false };
        read_one(attention(qkv[0].clone(), qkv[1].clone(), qkv[2].clone(), None, None, opts))
    });
    let attention_ms = if zoo_prune_web::cpu::flex::is_flex(&device) {
        timed("kernels", &mut || {
            let (out, _) = zoo_prune_web::cpu::flex::attention(&qkv[0], &qkv[1], &qkv[2], false, false).expect("flex");
            read_one(out)
        })
    } else {
        attention_burn_ms
    };
    // the connector's input (one encode) only when the connector is timed: `--only load` encodes nothing
    let connector_ms = on("connector").then(|| {
        let feats = model.vision.post_layernorm.forward(model.vision.forward(px.clone(), &[]).last_hidden);
        time(runs, &mut || read_one(model.connector.forward(feats.clone())))
    });

    let pre_ln = Tensor::<3>::random([o.tiles, vc.num_patches(), vc.hidden_size], Distribution::Normal(0.0, 1.0), &device);
    let zoo_ms = timed("zoo", &mut || read_all(zoo::sensitivity(model, &pre_ln, &ZooParams::default())));

    let mut prefill = serde_json::Map::new();
    let mut decode = serde_json::Map::new();
    let mut prompt = serde_json::Map::new();
    for &r in &o.ratios {
        let k = ((n_vis as f64) * r).round() as usize;
        let len = k + o.text_tokens;
        let emb = Tensor::<3>::random([1, len, dt], Distribution::Normal(0.0, 0.02), &device);
        let opts = ForwardOptions::default();
        let ms = timed("prefill", &mut || {
            let mut g = Generation::start(model, emb.clone(), &opts, 1, vec![]);
            std::hint::black_box(pollster::block_on(g.next_token(model)).unwrap());
        });
        // decode: the first next_token returns the prefill's token and queues step 1; the next
        // decode_tokens calls each read one step back and (but the last) queue the next.
        let one = || {
            let mut g = Generation::start(model, emb.clone(), &opts, o.decode_tokens + 1, vec![]);
            pollster::block_on(g.next_token(model)).unwrap();
            let t = Instant::now();
            for _ in 0..o.decode_tokens {
                pollster::block_on(g.next_token(model)).unwrap().expect("a token");
            }
            o.decode_tokens as f64 / t.elapsed().as_secs_f64()
        };
        let tok_s = on("decode").then(|| {
            one();
            median((0..runs).map(|_| one()).collect())
        });
        let key = format!("{r:?}");
        prefill.insert(key.clone(), json!(ms));
        decode.insert(key.clone(), json!(tok_s));
        prompt.insert(key, json!(len));
        eprintln!("  [{backend}] keep {r}: prefill {ms:.0?} ms, decode {tok_s:.1?} tok/s");
    }
    json!({
        "name": format!("burn {backend}"),
        "threads": std::env::var("RAYON_NUM_THREADS").ok().and_then(|v| v.parse::<usize>().ok()),
        "load_s": load_s,
        "tiles": o.tiles,
        "tokens_per_tile": per_tile,
        "text_tokens": o.text_tokens,
        "decode_tokens": o.decode_tokens,
        "encode_ms": encode_ms,
        "connector_ms": connector_ms,
        "matmul_ms": matmul_ms,
        "attention_ms": attention_ms,
        "attention_burn_ms": attention_burn_ms,
        "zoo_ms": zoo_ms,
        "prefill_ms": prefill,
        "decode_tok_s": decode,
        "prompt_tokens": prompt,
        "peak_rss_mb": vm_hwm_mb(),
    })
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into())
}

/// Runs a child command, echoing its stderr, and parses the last stdout line as JSON.
fn run_json(mut cmd: Command, what: &str) -> Option<Value> {
    eprintln!("running {what} ...");
    let out = cmd.stderr(Stdio::inherit()).output();
    match out {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            match text.lines().rev().find(|l| l.trim_start().starts_with('{')).map(serde_json::from_str::<Value>) {
                Some(Ok(v)) => Some(v),
                _ => {
                    eprintln!("{what}: no JSON result in its output:\n{text}");
                    None
                }
            }
        }
        Ok(out) => {
            eprintln!("{what} failed ({}); its row is left out", out.status);
            None
        }
        Err(e) => {
            eprintln!("{what} could not start: {e}; its row is left out");
            None
        }
    }
}

fn coordinate(o: &Opts) {
    let exe = std::env::current_exe().expect("the bench binary's path");
    let load_before = loadavg();
    // [round][backend], and PyTorch's figures of each round
    let mut results: Vec<Vec<Value>> = Vec::new();
    let mut torch: Vec<Value> = Vec::new();
    for round in 1..=o.rounds {
        let of = if o.rounds > 1 { format!(", round {round} of {}", o.rounds) } else { String::new() };
        let mut burn = Vec::new();
        for b in &o.backends {
            let mut cmd = Command::new(&exe);
            cmd.arg("stages").arg("--child").arg(b).args(common_args(o)).env("RAYON_NUM_THREADS", o.threads.to_string());
            // --only limits burn's stages (the PyTorch script runs all of its own)
            if let Some(only) = &o.only {
                cmd.arg("--only").arg(only.join(","));
            }
            if let Some(v) = run_json(cmd, &format!("burn {b}{of}")) {
                burn.push(v);
            }
        }
        if burn.len() != o.backends.len() {
            eprintln!("a burn backend produced no figures");
            std::process::exit(1);
        }
        results.push(burn);
        if let Some(py) = &o.torch {
            let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bench_torch.py");
            let mut cmd = Command::new(py);
            cmd.arg(script).args(common_args(o)).arg("--device").arg(&o.torch_device);
            // PyTorch's own pools: intra-op threads set by the script; OpenMP/MKL read these too
            cmd.env("OMP_NUM_THREADS", o.threads.to_string()).env("MKL_NUM_THREADS", o.threads.to_string());
            match run_json(cmd, &format!("PyTorch (scripts/bench_torch.py){of}")) {
                Some(t) => torch.push(t),
                // a side missing from one round would unpair the rest: PyTorch's rows are dropped
                None => {
                    torch.clear();
                    break;
                }
            }
        }
    }
    let load_after = loadavg();
    let table = render(o, &results, &torch, &load_before, &load_after);
    print!("{table}");
    if let Some(path) = &o.json {
        let all = json!({ "burn": results, "pytorch": torch, "load_before": load_before, "load_after": load_after });
        let mut f = std::fs::File::create(path).expect("--json file");
        writeln!(f, "{all:#}").unwrap();
    }
}

fn common_args(o: &Opts) -> Vec<String> {
    vec![
        "--model".into(),
        o.model.clone(),
        "--threads".into(),
        o.threads.to_string(),
        "--runs".into(),
        o.runs.to_string(),
        "--tiles".into(),
        o.tiles.to_string(),
        "--text-tokens".into(),
        o.text_tokens.to_string(),
        "--decode-tokens".into(),
        o.decode_tokens.to_string(),
        "--ratios".into(),
        o.ratios.iter().map(|r| format!("{r:?}")).collect::<Vec<_>>().join(","),
    ]
}

/// A stage: its label, where to find it in a result, and whether bigger is better.
struct Row {
    label: String,
    get: Box<dyn Fn(&Value) -> Option<f64>>,
    unit: &'static str,
    higher_is_better: bool,
}

fn rows(o: &Opts, sample: &Value) -> Vec<Row> {
    let f = |k: &'static str| -> Box<dyn Fn(&Value) -> Option<f64>> { Box::new(move |v: &Value| v[k].as_f64()) };
    let per_tile = sample["tokens_per_tile"].as_u64().unwrap_or(0) as usize;
    let n_vis = o.tiles * per_tile;
    let mut r = vec![
        Row { label: "vision encode, 1 tile".into(), get: f("encode_ms"), unit: "ms", higher_is_better: false },
        Row { label: "connector, 1 tile".into(), get: f("connector_ms"), unit: "ms", higher_is_better: false },
        Row { label: "encoder fc1 matmul alone (1024 x 768 x 3072)".into(), get: f("matmul_ms"), unit: "ms", higher_is_better: false },
        Row { label: "encoder attention alone (12 heads, 1024 patches)".into(), get: f("attention_ms"), unit: "ms", higher_is_better: false },
        Row {
            label: "the same, burn's fused attention op (PyTorch: SDPA as above)".into(),
            get: Box::new(|v: &Value| v["attention_burn_ms"].as_f64().or(v["attention_ms"].as_f64())),
            unit: "ms",
            higher_is_better: false,
        },
        Row {
            label: format!("ZOO sensitivity (JVP, m 64), {n_vis} tokens"),
            get: f("zoo_ms"),
            unit: "ms",
            higher_is_better: false,
        },
    ];
    for &ratio in &o.ratios {
        let key = format!("{ratio:?}");
        let len = ((n_vis as f64) * ratio).round() as usize + o.text_tokens;
        let k1 = key.clone();
        r.push(Row {
            label: format!("prefill + first token, keep {:.0} % ({len} tokens)", ratio * 100.0),
            get: Box::new(move |v: &Value| v["prefill_ms"][&k1].as_f64()),
            unit: "ms",
            higher_is_better: false,
        });
    }
    for &ratio in &o.ratios {
        let key = format!("{ratio:?}");
        let len = ((n_vis as f64) * ratio).round() as usize + o.text_tokens;
        r.push(Row {
            label: format!("decode after {len} tokens"),
            get: Box::new(move |v: &Value| v["decode_tok_s"][&key].as_f64()),
            unit: "tok/s",
            higher_is_better: true,
        });
    }
    r.push(Row { label: "peak memory (VmHWM, whole process)".into(), get: f("peak_rss_mb"), unit: "MB", higher_is_better: false });
    r.push(Row { label: "load checkpoint".into(), get: Box::new(|v: &Value| v["load_s"].as_f64().map(|s| s * 1e3)), unit: "ms", higher_is_better: false });
    r
}

fn fmt(v: Option<f64>) -> String {
    match v {
        Some(x) if x >= 100.0 => format!("{x:.0}"),
        Some(x) if x >= 10.0 => format!("{x:.1}"),
        Some(x) => format!("{x:.2}"),
        None => "-".into(),
    }
}

/// Cells of one value per round, "a / b / c".
fn per_round(v: impl Iterator<Item = String>) -> String {
    v.collect::<Vec<_>>().join(" / ")
}

/// `burn[round][backend]`, `torch[round]` (empty: PyTorch not run).
fn render(o: &Opts, burn: &[Vec<Value>], torch: &[Value], before: &str, after: &str) -> String {
    let mut s = String::new();
    let date = Command::new("date").arg("-u").arg("+%Y-%m-%d %H:%M UTC").output().ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default();
    s += "# zoo-prune-web stages: burn vs HF transformers (PyTorch), same checkpoint\n\n";
    s += &format!(
        "{date}; {} ({} cores), {} threads each side; load average before {before}, after {after}; median of {} runs after a warm-up; model {}\n",
        cpu_model(),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        o.threads,
        o.runs,
        o.model
    );
    if let Some(t) = torch.first() {
        s += &format!(
            "PyTorch side: {} (transformers {}, attention {}, device {})\n",
            t["versions"]["torch"].as_str().unwrap_or("?"),
            t["versions"]["transformers"].as_str().unwrap_or("?"),
            t["attn_implementation"].as_str().unwrap_or("?"),
            o.torch_device
        );
    } else {
        s += "PyTorch side: not run (pass --torch PYTHON, or use scripts/bench-vs-pytorch.sh)\n";
    }
    s += "ratio = burn time / PyTorch time (for tok/s: PyTorch tok/s / burn tok/s); below 1 burn is faster\n";
    if burn.len() > 1 {
        s += &format!(
            "{} rounds, the sides alternated (burn, PyTorch, burn, ...): each cell is round 1 / round 2 / ..., each ratio that round's pair\n",
            burn.len()
        );
    }
    s += "\n";
    let names: Vec<&str> = burn[0].iter().map(|b| b["name"].as_str().unwrap_or("burn")).collect();
    let mut head = "| stage | unit |".to_string();
    let mut rule = "| --- | --- |".to_string();
    for n in &names {
        head += &format!(" {n} |");
        rule += " ---: |";
    }
    if let Some(t) = torch.first() {
        head += &format!(" {} |", t["name"].as_str().unwrap_or("PyTorch"));
        rule += " ---: |";
        for n in &names {
            head += &format!(" ratio {} |", n.trim_start_matches("burn "));
            rule += " ---: |";
        }
    }
    s += &format!("{head}\n{rule}\n");
    for row in rows(o, &burn[0][0]) {
        let mut line = format!("| {} | {} |", row.label, row.unit);
        for i in 0..names.len() {
            line += &format!(" {} |", per_round(burn.iter().map(|r| fmt((row.get)(&r[i])))));
        }
        if !torch.is_empty() {
            line += &format!(" {} |", per_round(torch.iter().map(|t| fmt((row.get)(t)))));
            for i in 0..names.len() {
                let ratios = burn.iter().zip(torch).map(|(r, t)| match ((row.get)(&r[i]), (row.get)(t)) {
                    (Some(bv), Some(tv)) if bv > 0.0 && tv > 0.0 => {
                        format!("{:.2}", if row.higher_is_better { tv / bv } else { bv / tv })
                    }
                    _ => "-".into(),
                });
                line += &format!(" {} |", per_round(ratios));
            }
        }
        s += &format!("{line}\n");
    }
    s
}
