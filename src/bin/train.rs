//! Trains the built-in model (issue 5) on the synthetic scenes with burn's autodiff on the flex
//! CPU backend, and writes an HF-layout model folder that `Vlm::load` reads.
//!
//!     cargo run --release --bin train -- --out assets/builtin-model --steps 3000 --batch 16
//!
//! Data is generated on the fly: step s uses train scenes (seed << 40) + s * batch .. + batch, one
//! sampled question each, through the model's own processor and tokenizer (`builtin::DataSource`,
//! the same calls `Vlm` makes). Loss: cross-entropy on the answer tokens only. Every
//! `--val-every` steps: exact-match accuracy of the real greedy generation path on the first
//! `--val-n` validation scenes, and the folder is written. Fixed seed: the same command gives
//! the same model.

#[cfg(target_family = "wasm")]
fn main() {}

#[cfg(not(target_family = "wasm"))]
fn main() {
    if let Err(e) = native::run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

#[cfg(not(target_family = "wasm"))]
mod native {
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use std::time::Instant;

    use burn::module::Module;
    use burn::optim::{AdamWConfig, GradientsParams};
    use burn::grad_clipping::GradientClippingConfig;
    use burn::tensor::Device;

    use zoo_prune_web::builtin::{self, batch_loss, greedy_answer, DataSource, Example, Sizes};
    use zoo_prune_web::model::Idefics3;
    use zoo_prune_web::prompt::PromptTokenizer;
    use zoo_prune_web::scenes::Split;
    use zoo_prune_web::{Error, Result, Vlm};

    struct Args {
        out: PathBuf,
        steps: usize,
        batch: usize,
        lr: f64,
        warmup: usize,
        weight_decay: f32,
        seed: u64,
        log_every: usize,
        val_every: usize,
        val_n: u64,
        max_minutes: f64,
        sizes: Sizes,
    }

    fn parse() -> Result<Args> {
        let mut a = Args {
            out: PathBuf::from("assets/builtin-model"),
            steps: 3000,
            batch: 16,
            lr: 2e-3,
            warmup: 100,
            weight_decay: 0.01,
            seed: 0,
            log_every: 10,
            val_every: 250,
            val_n: 200,
            max_minutes: 60.0,
            sizes: Sizes::builtin(),
        };
        let args: Vec<String> = std::env::args().skip(1).collect();
        let mut i = 0;
        let bad = |m: String| Error::Other(m);
        while i < args.len() {
            let key = args[i].as_str();
            if key == "--help" || key == "-h" {
                println!(
                    "train [--out DIR] [--steps N] [--batch N] [--lr X] [--warmup N] [--weight-decay X] \
                     [--seed N] [--log-every N] [--val-every N] [--val-n N] [--max-minutes M] [--sizes builtin|tiny]"
                );
                std::process::exit(0);
            }
            let val = args.get(i + 1).ok_or_else(|| bad(format!("{key} needs a value")))?.clone();
            let num = |v: &str| v.parse::<f64>().map_err(|_| bad(format!("{key}: not a number: {v}")));
            match key {
                "--out" => a.out = PathBuf::from(val),
                "--steps" => a.steps = num(&val)? as usize,
                "--batch" => a.batch = (num(&val)? as usize).max(1),
                "--lr" => a.lr = num(&val)?,
                "--warmup" => a.warmup = num(&val)? as usize,
                "--weight-decay" => a.weight_decay = num(&val)? as f32,
                "--seed" => a.seed = num(&val)? as u64,
                "--log-every" => a.log_every = (num(&val)? as usize).max(1),
                "--val-every" => a.val_every = num(&val)? as usize,
                "--val-n" => a.val_n = num(&val)? as u64,
                "--max-minutes" => a.max_minutes = num(&val)?,
                "--sizes" => {
                    a.sizes = match val.as_str() {
                        "builtin" => Sizes::builtin(),
                        "tiny" => Sizes::tiny(),
                        o => return Err(bad(format!("--sizes: builtin or tiny, not {o}"))),
                    }
                }
                o => return Err(bad(format!("unknown option {o} (see --help)"))),
            }
            i += 2;
        }
        Ok(a)
    }

    /// Linear warmup, then cosine from `lr` down to lr / 10 at the last step.
    fn lr_at(a: &Args, step: usize) -> f64 {
        if step < a.warmup {
            return a.lr * (step + 1) as f64 / a.warmup as f64;
        }
        let span = (a.steps.saturating_sub(a.warmup)).max(1) as f64;
        let t = ((step - a.warmup) as f64 / span).min(1.0);
        a.lr * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()))
    }

    /// Exact-match accuracy (overall and per question kind) of greedy answers on validation scenes.
    fn validate(model: &Idefics3, a: &Args, device: &Device) -> Result<(f64, BTreeMap<&'static str, (usize, usize)>)> {
        let config = a.sizes.config();
        let tok_json = builtin::tokenizer_json();
        let vlm = Vlm {
            model: model.valid(),
            tokenizer: PromptTokenizer::from_bytes(tok_json.as_bytes(), config.image_token_id, &[])?,
            processor: zoo_prune_web::preprocess::ProcessorConfig::from_json(
                builtin::preprocessor_json().as_bytes(),
                config.vision_config.image_size,
            )?,
            config,
            device: device.clone(),
        };
        let data = DataSource::builtin(&a.sizes);
        let mut per: BTreeMap<&'static str, (usize, usize)> = BTreeMap::new();
        let mut right = 0;
        for i in 0..a.val_n {
            let ex = data.example(Split::Validation, i)?;
            let got = greedy_answer(&vlm, &ex.scene, &ex.qa.question, 4)?;
            let e = per.entry(ex.qa.kind.name()).or_default();
            e.1 += 1;
            if got == ex.qa.answer {
                e.0 += 1;
                right += 1;
            }
        }
        Ok((right as f64 / a.val_n.max(1) as f64, per))
    }

    fn save(model: &Idefics3, a: &Args) -> Result<()> {
        builtin::write_model_dir(&a.out, &a.sizes, &model.valid())
    }

    pub fn run() -> Result<()> {
        let a = parse()?;
        let plain = Device::flex();
        let device = plain.clone().autodiff();
        let config = a.sizes.config();
        let init = builtin::serialize_f32(&builtin::init_tensors(&config, a.seed));
        let mut model = Idefics3::load(&config, &init, &device)?;
        let params: usize = builtin::init_tensors(&config, a.seed).iter().map(|t| t.2.len()).sum();
        let data = DataSource::builtin(&a.sizes);
        eprintln!(
            "model: {params} parameters ({:.2} MB f32), {} visual tokens per image, vocab {}; \
             batch {}, {} steps, lr {} (warmup {}), weight decay {}, seed {}",
            params as f64 * 4.0 / 1e6,
            config.tokens_per_tile(),
            config.text_config.vocab_size,
            a.batch,
            a.steps,
            a.lr,
            a.warmup,
            a.weight_decay,
            a.seed
        );
        let mut optim = AdamWConfig::new()
            .with_weight_decay(a.weight_decay)
            .with_grad_clipping(Some(GradientClippingConfig::Norm(1.0)))
            .init();
        let start = Instant::now();
        let mut window = (Instant::now(), 0usize, 0.0f64, 0usize, 0usize);
        let base = a.seed << 40;
        let mut step = 0;
        while step < a.steps {
            let examples: Vec<Example> = (0..a.batch)
                .map(|j| data.example(Split::Train, base + (step * a.batch + j) as u64))
                .collect::<Result<_>>()?;
            let refs: Vec<&Example> = examples.iter().collect();
            let out = batch_loss(&model, &data, &refs)?;
            let loss: f32 = out.loss.clone().into_scalar();
            let pred: Vec<i64> = out.logits.clone().argmax(1).into_data().iter::<i64>().collect();
            // teacher-forced exact match: every answer token (and the end) predicted
            let exact = out
                .rows
                .iter()
                .filter(|r| (*r).clone().all(|k| pred[k] == out.targets[k] as i64))
                .count();
            let grads = GradientsParams::from_grads(out.loss.backward(), &model);
            let lr = lr_at(&a, step);
            model = optim.step(lr, model, grads);
            step += 1;
            window.1 += a.batch;
            window.2 += loss as f64;
            window.3 += 1;
            window.4 += exact;
            if step % a.log_every == 0 || step == a.steps {
                let dt = window.0.elapsed().as_secs_f64();
                println!(
                    "step {step:>5}  loss {:.4}  tf-exact {:.3}  lr {lr:.2e}  {:.1} samples/s  {:.2} s/step  elapsed {:.0} s",
                    window.2 / window.3 as f64,
                    window.4 as f64 / window.1 as f64,
                    window.1 as f64 / dt,
                    dt / window.3 as f64,
                    start.elapsed().as_secs_f64()
                );
                window = (Instant::now(), 0, 0.0, 0, 0);
            }
            let out_of_time = start.elapsed().as_secs_f64() > a.max_minutes * 60.0;
            if (a.val_every > 0 && step % a.val_every == 0) || step == a.steps || out_of_time {
                let t = Instant::now();
                let (acc, per) = validate(&model, &a, &plain)?;
                let kinds: Vec<String> =
                    per.iter().map(|(k, (r, n))| format!("{k} {r}/{n}")).collect();
                println!(
                    "validation step {step}: exact match {:.1} % on {} scenes ({}) [{:.1} s]",
                    100.0 * acc,
                    a.val_n,
                    kinds.join(", "),
                    t.elapsed().as_secs_f64()
                );
                save(&model, &a)?;
                println!("saved {}", a.out.display());
            }
            if out_of_time {
                println!("stopping: --max-minutes {} reached at step {step}", a.max_minutes);
                break;
            }
        }
        Ok(())
    }
}
