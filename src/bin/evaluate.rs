//! Accuracy against keep ratio for every pruning method on held-out synthetic scenes (issue 5).
//!
//!     cargo run --release --bin evaluate -- --model assets/builtin-model --n 500 \
//!         --svg assets/accuracy-vs-keep.svg --json assets/accuracy-vs-keep.json
//!
//! Prints a markdown table (methods x keep ratios) and the accuracy by question kind for ZOO-Prune,
//! and writes the plot (SVG) and the numbers (JSON) when asked.

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
    use std::path::PathBuf;

    use zoo_prune_web::builtin::DataSource;
    use zoo_prune_web::device::native_device;
    use zoo_prune_web::evaluate::{evaluate, Row};
    use zoo_prune_web::prune::{Method, Positions};
    use zoo_prune_web::scenes::Split;
    use zoo_prune_web::{Error, ModelFiles, Result, Vlm};

    const USAGE: &str = "evaluate [--model DIR] [--n N] [--split test|validation] \
[--ratios 1,0.5,0.25,0.125,0.0625] [--methods zoo,divprune,zoo:sum,zoo:none,...] \
[--positions renumber|keep|both] [--seed N] [--svg FILE] [--json FILE] \
[--samples DIR (also write one held-out scene per question kind as PNG + scenes.json)]";

    pub fn run() -> Result<()> {
        let mut model = PathBuf::from("assets/builtin-model");
        let mut n = 200usize;
        let mut split = Split::Test;
        let mut ratios = vec![1.0, 0.5, 0.25, 0.125, 0.0625];
        let mut names: Vec<String> = Method::NAMES.iter().map(|s| s.to_string()).collect();
        let mut seed = 0u64;
        let mut positions = vec![Positions::Renumber];
        let mut svg = None;
        let mut json = None;
        let mut samples = None;
        let args: Vec<String> = std::env::args().skip(1).collect();
        let bad = |m: String| Error::Other(format!("{m}\nusage: {USAGE}"));
        let mut i = 0;
        while i < args.len() {
            let key = args[i].as_str();
            if key == "--help" || key == "-h" {
                println!("usage: {USAGE}");
                return Ok(());
            }
            let val = args.get(i + 1).ok_or_else(|| bad(format!("{key} needs a value")))?.clone();
            match key {
                "--model" => model = PathBuf::from(val),
                "--n" => n = val.parse().map_err(|_| bad(format!("--n: not a count: {val}")))?,
                "--split" => {
                    split = match val.as_str() {
                        "test" => Split::Test,
                        "validation" => Split::Validation,
                        o => return Err(bad(format!("--split: test or validation, not {o}"))),
                    }
                }
                "--ratios" => {
                    ratios = val
                        .split(',')
                        .map(|r| match r.trim().parse::<f64>() {
                            Ok(x) if x > 0.0 && x <= 1.0 => Ok(x),
                            _ => Err(bad(format!("--ratios: {r:?} is not a ratio in (0, 1]"))),
                        })
                        .collect::<Result<_>>()?
                }
                "--methods" => names = val.split(',').map(|s| s.trim().to_string()).collect(),
                "--positions" => {
                    positions = match val.as_str() {
                        "both" => vec![Positions::Renumber, Positions::Keep],
                        one => vec![Positions::parse(one)?],
                    }
                }
                "--seed" => seed = val.parse().map_err(|_| bad(format!("--seed: not a number: {val}")))?,
                "--svg" => svg = Some(PathBuf::from(val)),
                "--json" => json = Some(PathBuf::from(val)),
                "--samples" => samples = Some(PathBuf::from(val)),
                o => return Err(bad(format!("unknown option {o}"))),
            }
            i += 2;
        }
        let mut methods: Vec<Row> = vec![];
        for m in &names {
            methods.extend(Row::parse(m, seed, &positions)?);
        }
        let device = native_device("flex")?;
        let files = ModelFiles::from_dir(&model)?;
        let preprocessor = files.preprocessor.clone().ok_or_else(|| {
            Error::Checkpoint(format!("{}: no preprocessor_config.json", model.display()))
        })?;
        let vlm = Vlm::load(&files, &device)?;
        let data = DataSource::new(&vlm.config, &files.tokenizer, &preprocessor)?;
        if let Some(dir) = &samples {
            let list = zoo_prune_web::evaluate::write_scene_samples(&data, dir)?;
            eprintln!("{} sample scenes written to {}", list.as_array().map_or(0, |a| a.len()), dir.display());
        }
        if n == 0 {
            if samples.is_some() {
                return Ok(());
            }
            return Err(bad("--n: evaluate at least one scene (--n 0 only with --samples)".into()));
        }
        eprintln!(
            "evaluating {} on {n} {split:?} scenes: {} methods x {} keep ratios",
            model.display(),
            methods.len(),
            ratios.len()
        );
        let ev = evaluate(&vlm, &data, split, n, &ratios, &methods, |done, total| {
            if done % 50 == 0 || done == total {
                eprintln!("  {done}/{total} scenes");
            }
        })?;
        println!(
            "Exact-match accuracy (%) on {} {:?} scenes (one question each), {} visual tokens per image; \
             {:.0} s",
            ev.scenes, ev.split, ev.tokens, ev.seconds
        );
        println!("\n{}", ev.table());
        for (m, name) in ev.methods.iter().enumerate() {
            if name.starts_with("zoo") && !name.starts_with("zoo:") {
                println!("{}", ev.kind_table(m));
            }
        }
        // where positions matter most: the side questions ("left or right?"), every method
        println!("{}", ev.one_kind_table("side"));
        let write = |path: &PathBuf, text: String| {
            std::fs::write(path, text).map_err(|e| Error::Other(format!("cannot write {}: {e}", path.display())))
        };
        if let Some(p) = &svg {
            let title = format!("Accuracy vs visual tokens kept ({} held-out scenes)", ev.scenes);
            write(p, ev.svg(&title))?;
            eprintln!("plot written to {}", p.display());
        }
        if let Some(p) = &json {
            write(p, serde_json::to_string_pretty(&ev.to_json()).unwrap())?;
            eprintln!("numbers written to {}", p.display());
        }
        Ok(())
    }
}
