//! Fuzzing on stable Rust: a seeded mutation loop over every parser the page feeds with a person's
//! bytes. A panic in wasm kills the model (the page then offers a reload), so none of these may
//! panic: each must return an error or work.
//!
//! Targets (each case starts from a valid file and mutates it: bytes, or the parsed JSON tree, or
//! the file's structure):
//! - `safetensors`: model.safetensors (header JSON entries, dtypes, shapes, offsets, the header
//!   length, truncation, NaN / Inf weights) through `Vlm::load` with a small config;
//! - `config`: config.json (and now and then generation_config.json) through `Vlm::load`;
//! - `preprocessor`: preprocessor_config.json, then preprocessing an image of a random size;
//! - `image`: PNG (several colour types, IHDR sizes with valid CRCs), JPEG, GIF and WebP bytes
//!   through `RgbImage::decode` and preprocessing;
//! - `tokenizer`: tokenizer.json through the prompt builder, decoding and streaming;
//! - `question`: random text (special-token text, control characters, long) as the question.
//! A model that loads goes on (every accepted config, one in `--exercise-every` for safetensors,
//! image and question) through encode, a ranking by a random method, and a short answer, so that
//! what a mutation let through is used as the page would use it; preprocessor cases stop after
//! preprocessing and token geometry, tokenizer cases after prompt building, decoding, streaming.
//!
//! Also reported: the largest single allocation a case asked for (the wasm heap is at most 4 GiB:
//! an input that makes the code ask for more than `--max-alloc-mib` is a finding too) and the
//! slowest case. Case i of a target is reproducible alone: `--target T --first-case i --cases 1`.
//!
//! `cargo run --release --bin fuzz -- --cases 1000000 --seconds 3600` (all targets).
//! FUZZ_BACKTRACE=1 adds each panic's backtrace. Prints one line per target; exits 1 when any panic or oversized allocation was found.

mod corpus;
mod mutate;
mod targets;

use corpus::*;
use mutate::*;
use targets::*;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde_json::{json, Value};
use zoo_prune_web::config::Idefics3Config;
use zoo_prune_web::rng::SplitMix64;
use zoo_prune_web::prune::{budget, rank, BudgetMode, Method, Positions, PruneInputs};
use zoo_prune_web::preprocess::{ProcessedImage, ProcessorConfig, RgbImage};
use zoo_prune_web::prompt::{PromptTokenizer, TextStream};
use zoo_prune_web::random_weights::random_checkpoint;
use zoo_prune_web::{ModelFiles, Vlm};

// ---- the largest single allocation, per case

struct Tracking;
static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LARGEST.fetch_max(l.size(), Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        LARGEST.fetch_max(l.size(), Ordering::Relaxed);
        System.alloc_zeroed(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LARGEST.fetch_max(new, Ordering::Relaxed);
        System.realloc(p, l, new)
    }
}

#[global_allocator]
static ALLOC: Tracking = Tracking;

struct Args {
    targets: Vec<Target>,
    cases: u64,
    first_case: u64,
    seconds: f64,
    seed: u64,
    exercise_every: usize,
    max_alloc: usize,
    out: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        targets: TARGETS.iter().map(|t| t.1).collect(),
        cases: 10_000,
        first_case: 0,
        seconds: f64::INFINITY,
        seed: 1,
        exercise_every: 16,
        max_alloc: 256 << 20,
        out: PathBuf::from("target/fuzz-findings"),
    };
    let usage = || {
        format!(
            "usage: fuzz [--target {}] [--cases N] [--first-case I] [--seconds S] [--seed S] \
             [--exercise-every N] [--max-alloc-mib M] [--out DIR]",
            TARGETS.iter().map(|t| t.0).collect::<Vec<_>>().join(",")
        )
    };
    let parsed = (|| -> Result<(), lexopt::Error> {
        use lexopt::prelude::*;
        let mut p = lexopt::Parser::from_env();
        while let Some(arg) = p.next()? {
            match arg {
                Long("target") => {
                    a.targets = p
                        .value()?
                        .string()?
                        .split(',')
                        .map(|n| TARGETS.iter().find(|t| t.0 == n).map(|t| t.1).ok_or(format!("unknown target {n}")))
                        .collect::<Result<_, _>>()?;
                }
                Long("cases") => a.cases = p.value()?.parse()?,
                Long("first-case") => a.first_case = p.value()?.parse()?,
                Long("seconds") => a.seconds = p.value()?.parse()?,
                Long("seed") => a.seed = p.value()?.parse()?,
                Long("exercise-every") => a.exercise_every = p.value()?.parse::<usize>()?.max(1),
                Long("max-alloc-mib") => a.max_alloc = p.value()?.parse::<usize>()? << 20,
                Long("out") => a.out = p.value()?.into(),
                Short('h') | Long("help") => {
                    println!("{}", usage());
                    std::process::exit(0);
                }
                _ => return Err(arg.unexpected()),
            }
        }
        Ok(())
    })();
    parsed.map_err(|e| format!("{e}\n{}", usage()))?;
    Ok(a)
}

// the last panic's message and place (the hook below), read after a case that panicked
thread_local!(static PANIC: RefCell<Option<String>> = const { RefCell::new(None) });

fn main() {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        let bt = if std::env::var_os("FUZZ_BACKTRACE").is_some() {
            format!("\n{}", std::backtrace::Backtrace::force_capture())
        } else {
            String::new()
        };
        PANIC.with(|p| *p.borrow_mut() = Some(format!("{at}: {msg}{bt}")));
    }));
    let base = base_files();
    println!(
        "fuzz: seed {}, up to {} cases and {} s per target, exercise 1 in {}, allocations over {} MiB are findings",
        a.seed, a.cases, a.seconds, a.exercise_every, a.max_alloc >> 20
    );
    println!("{:<13} {:>9} {:>9} {:>9} {:>7} {:>10} {:>12} {:>11} {:>8}", "target", "cases", "accepted", "refused",
        "panics", "big-alloc", "largest MiB", "slowest ms", "cases/s");
    let mut findings = 0;
    for &t in &a.targets {
        let name = TARGETS.iter().find(|x| x.1 == t).unwrap().0;
        let tag = name.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
        let (mut cases, mut accepted, mut panics, mut big, mut largest, mut slowest) = (0u64, 0u64, 0u64, 0u64, 0usize, 0f64);
        let mut seen: Vec<String> = Vec::new();
        let t0 = Instant::now();
        for i in a.first_case..a.first_case + a.cases {
            if t0.elapsed().as_secs_f64() > a.seconds {
                break;
            }
            let mut rng = Rng(SplitMix64::new(a.seed ^ tag.rotate_left(17) ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15)));
            let mut input = Vec::new();
            LARGEST.store(0, Ordering::Relaxed);
            let tc = Instant::now();
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_case(t, &mut rng, &base, a.exercise_every, &mut input)
            }));
            slowest = slowest.max(tc.elapsed().as_secs_f64() * 1e3);
            let peak = LARGEST.load(Ordering::Relaxed);
            largest = largest.max(peak);
            cases += 1;
            let finding = match r {
                Ok(ok) => {
                    accepted += ok as u64;
                    if peak > a.max_alloc {
                        big += 1;
                        Some(format!("allocation of {} MiB", peak >> 20))
                    } else {
                        None
                    }
                }
                Err(_) => {
                    panics += 1;
                    Some(format!("panic at {}", PANIC.with(|p| p.borrow_mut().take()).unwrap_or_default()))
                }
            };
            if let Some(what) = finding {
                let _ = std::fs::create_dir_all(&a.out);
                let file = a.out.join(format!("{name}-{i}.bin"));
                let _ = std::fs::write(&file, &input);
                // one line per distinct place (the first few words of the message)
                let key: String = what.chars().take(120).collect();
                if !seen.contains(&key) {
                    seen.push(key);
                    println!("  {name} case {i}: {what} (input: {}; rerun: --target {name} --seed {} --first-case {i} --cases 1)",
                        file.display(), a.seed);
                }
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        findings += panics + big;
        println!("{name:<13} {cases:>9} {accepted:>9} {:>9} {panics:>7} {big:>10} {:>12.1} {slowest:>11.1} {:>8.0}",
            cases - accepted - panics, largest as f64 / (1 << 20) as f64, cases as f64 / secs.max(1e-9));
    }
    if findings > 0 {
        println!("FOUND {findings} case(s): panics or oversized allocations");
        std::process::exit(1);
    }
    println!("no panics, no oversized allocations");
}
