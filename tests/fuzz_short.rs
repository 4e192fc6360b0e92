//! The fuzz bin's short, fixed-seed run (CI): 1000 mutated inputs per target through the loaders,
//! the image decoder, preprocessing, the tokenizer and the prompt builder; accepted models run on
//! through encode, ranking and a short answer (see src/bin/fuzz/ for which and how often). Any
//! panic or allocation over 256 MiB fails it. The
//! long run's figures (a million cases per target) are in README's Reliability section.

use std::process::Command;

#[test]
fn fuzz_targets_do_not_panic_on_a_fixed_seed() {
    let out = std::env::temp_dir().join(format!("zpw-fuzz-findings-{}", std::process::id()));
    let run = Command::new(env!("CARGO_BIN_EXE_fuzz"))
        .args(["--cases", "1000", "--seed", "7", "--out"])
        .arg(&out)
        .output()
        .expect("the fuzz bin runs");
    let text = String::from_utf8_lossy(&run.stdout);
    println!("{text}{}", String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success(), "the fuzz run found panics or oversized allocations:\n{text}");
    for target in ["safetensors", "config", "preprocessor", "image", "tokenizer", "question"] {
        let line = text.lines().find(|l| l.starts_with(target)).unwrap_or_else(|| panic!("no line for {target}"));
        let cols: Vec<&str> = line.split_whitespace().collect();
        // target, cases, accepted, refused, panics, big-alloc, ...
        assert_eq!(cols[1], "1000", "{target}: not every case ran: {line}");
        assert_eq!((cols[4], cols[5]), ("0", "0"), "{target}: {line}");
        let accepted: u64 = cols[2].parse().unwrap();
        // a mutator that only ever broke its input (or never did) would test nothing past the parser
        if target != "question" {
            assert!(accepted > 0 && accepted < 1000, "{target}: {accepted} of 1000 accepted: the mutations are not exercising both paths");
        }
    }
}
