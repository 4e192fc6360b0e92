//! Accuracy against keep ratio for every pruning method on held-out synthetic scenes (issue 5).
//!
//!     cargo run --release --bin evaluate -- --model assets/builtin-model --n 500 \
//!         --svg assets/accuracy-vs-keep.svg --json assets/accuracy-vs-keep.json
//!
//! Prints a markdown table (methods x keep ratios, each accuracy with its 95 % interval), ZOO-Prune
//! against every other method (McNemar's exact test), the accuracy by question kind for ZOO-Prune,
//! and writes the plot (SVG) and the numbers (JSON) when asked.
//!
//! `--sensitivity zoo,zoo:last-mlp:m8,...` instead measures what ZOO's sensitivity follows on each
//! scene (Spearman's rho with the feature norm and with rms(1 / sigma)) for each ZOO variant.

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
    use zoo_prune_web::accuracy::Row;
    use zoo_prune_web::evaluate::evaluate;
    use zoo_prune_web::prune::{Method, Positions};
    use zoo_prune_web::scenes::Split;
    use zoo_prune_web::{Error, ModelFiles, Result, Vlm};

    const USAGE: &str = "evaluate [--model DIR] [--n N] [--split test|validation] \
[--ratios 1,0.5,0.25,0.125,0.0625] [--methods zoo,divprune,zoo:sum,zoo:none,...] \
[--positions renumber|keep|both] [--seed N] [--svg FILE] [--json FILE] \
[--samples DIR (also write one held-out scene per question kind as PNG + scenes.json)] \
[--eval-scenes DIR (also write the first N test scenes with evaluate's questions as PNG + eval.json: the \
page's Evaluate panel)] \
[--sensitivity zoo,zoo:last-mlp:m8,zoo:last-mlp:m16 (a study of ZOO's sensitivity per proxy instead \
of the accuracy: rank correlation with the feature norm and rms(1/sigma) on each scene)]";

    pub fn run() -> Result<()> {
        let mut model = PathBuf::from("assets/builtin-model");
        let mut n = 200usize;
        let mut split = Split::Test;
        let mut ratios = vec![1.0, 0.5, 0.25, 0.125, 0.0625];
        let mut names: Vec<String> = Method::NAMES.iter().map(|s| s.to_string()).collect();
        let mut seed = 0u64;
        let mut positions = vec![Positions::Renumber];
        let mut svg: Option<PathBuf> = None;
        let mut json: Option<PathBuf> = None;
        let mut samples: Option<PathBuf> = None;
        let mut eval_scenes: Option<PathBuf> = None;
        let mut study: Option<Vec<String>> = None;
        let bad = |m: String| Error::Other(format!("{m}\nusage: {USAGE}"));
        let mut parse = || -> std::result::Result<(), lexopt::Error> {
            use lexopt::prelude::*;
            let mut p = lexopt::Parser::from_env();
            let list = |v: String| v.split(',').map(|s| s.trim().to_string()).collect::<Vec<_>>();
            while let Some(arg) = p.next()? {
                match arg {
                    Short('h') | Long("help") => {
                        println!("usage: {USAGE}");
                        std::process::exit(0);
                    }
                    Long("model") => model = p.value()?.into(),
                    Long("n") => n = p.value()?.parse()?,
                    Long("split") => {
                        split = match p.value()?.string()?.as_str() {
                            "test" => Split::Test,
                            "validation" => Split::Validation,
                            o => return Err(format!("--split: test or validation, not {o}").into()),
                        }
                    }
                    Long("ratios") => {
                        ratios = list(p.value()?.string()?)
                            .iter()
                            .map(|r| match r.parse::<f64>() {
                                Ok(x) if x > 0.0 && x <= 1.0 => Ok(x),
                                _ => Err(format!("--ratios: {r:?} is not a ratio in (0, 1]")),
                            })
                            .collect::<std::result::Result<_, _>>()?
                    }
                    Long("methods") => names = list(p.value()?.string()?),
                    Long("positions") => {
                        positions = match p.value()?.string()?.as_str() {
                            "both" => vec![Positions::Renumber, Positions::Keep],
                            one => vec![Positions::parse(one).map_err(|e| e.to_string())?],
                        }
                    }
                    Long("seed") => seed = p.value()?.parse()?,
                    Long("svg") => svg = Some(p.value()?.into()),
                    Long("json") => json = Some(p.value()?.into()),
                    Long("samples") => samples = Some(p.value()?.into()),
                    Long("eval-scenes") => eval_scenes = Some(p.value()?.into()),
                    Long("sensitivity") => study = Some(list(p.value()?.string()?)),
                    _ => return Err(arg.unexpected()),
                }
            }
            Ok(())
        };
        parse().map_err(|e| bad(e.to_string()))?;
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
        if let Some(dir) = &eval_scenes {
            zoo_prune_web::evaluate::write_eval_scenes(&data, n, dir)?;
            eprintln!("{n} test scenes with their questions written to {}", dir.display());
            return Ok(());
        }
        if n == 0 {
            if samples.is_some() {
                return Ok(());
            }
            return Err(bad("--n: evaluate at least one scene (--n 0 only with --samples)".into()));
        }
        let write = |path: &PathBuf, text: String| {
            std::fs::write(path, text).map_err(|e| Error::Other(format!("cannot write {}: {e}", path.display())))
        };
        if let Some(specs) = study {
            let mut proxies = Vec::new();
            for spec in &specs {
                match Row::parse(spec, seed, &[Positions::Renumber])?.remove(0).method {
                    Method::Zoo { params, .. } => proxies.push((spec.clone(), params)),
                    _ => return Err(bad(format!("--sensitivity: {spec:?} is not a zoo variant"))),
                }
            }
            eprintln!("ZOO's sensitivity on {n} {split:?} scenes: {}", specs.join(", "));
            let st = std::time::Instant::now();
            let s = zoo_prune_web::evaluate::sensitivity_study(&vlm, &data, split, n, &proxies, |done, total| {
                if done % 100 == 0 || done == total {
                    eprintln!("  {done}/{total} scenes");
                }
            })?;
            println!(
                "What ZOO's sensitivity S follows: Spearman's rho per scene over its visual tokens, {} {:?} scenes; {:.0} s\n",
                s.scenes,
                s.split,
                st.elapsed().as_secs_f64()
            );
            println!("{}", s.table());
            if let Some(p) = &json {
                write(p, serde_json::to_string_pretty(&s.to_json()).unwrap())?;
                eprintln!("numbers written to {}", p.display());
            }
            return Ok(());
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
        println!("\nEach cell: accuracy (95 % Wilson interval).\n\n{}", ev.table());
        if ev.paired_tests().is_empty() {
            println!("(no zoo row: no paired tests)\n");
        } else {
            println!(
                "ZOO against each method with the same positions: ZOO's lead in points on the same scenes \
                 and McNemar's exact p (bold: p < 0.05)\n\n{}",
                ev.paired_table()
            );
        }
        for (m, name) in ev.methods.iter().enumerate() {
            if name.starts_with("zoo") && !name.starts_with("zoo:") {
                println!("{}", ev.kind_table(m));
            }
        }
        // where positions matter most: the side questions ("left or right?"), every method
        println!("{}", ev.one_kind_table("side"));
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
