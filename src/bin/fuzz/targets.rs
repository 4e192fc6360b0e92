//! What a case runs: each target's parser on its mutated input and, for what loads, the model
//! used as the page uses it (encode, a ranking, a short answer).

use super::*;

// ---- what a case runs

/// Encode, rank with a random method and budget mode, and answer a few tokens: what the page does
/// with a model and an image it accepted.
pub(crate) fn exercise(rng: &mut Rng, vlm: &Vlm, img: &RgbImage, question: &str) -> zoo_prune_web::Result<()> {
    let grid = *rng.pick(&[1usize, 2, 3]);
    let processed = vlm.preprocess(img, Some(grid))?;
    let ids = vlm.prompt_ids(question, &processed)?;
    let layers = vlm.config.vision_config.num_hidden_layers;
    let method = Method::by_name(Method::NAMES[rng.below(Method::NAMES.len())], rng.0.next_u64() % 4)?;
    let att = if matches!(method, Method::VisionZip { .. }) && layers > 0 { vec![layers - 1] } else { vec![] };
    let encoded = pollster::block_on(vlm.encode_until(processed, 1 + rng.below(3), &att, |_, _| std::future::ready(true)))?;
    let q_ids = vlm.tokenizer.question_ids(question)?;
    let inputs = PruneInputs::new(&vlm.model, &encoded.tiles, vlm.config.image_token_id, &ids, &q_ids);
    let mode = if rng.chance(2) { BudgetMode::PerTile } else { BudgetMode::Global };
    let ranking = pollster::block_on(rank(&method, &inputs, mode))?;
    let features = encoded.features();
    let n = features.dims()[0];
    let k = budget(n, *rng.pick(&[1.0, 0.5, 0.1, 0.0]));
    let keep = ranking.keep(k);
    let mut gen = vlm.start_answer_pruned(&ids, features, &keep, ranking.deep_drop.as_ref(), Positions::Renumber, 3)?;
    let mut stream = TextStream::default();
    while let Some(tok) = pollster::block_on(gen.next_token(&vlm.model))? {
        stream.push(&vlm.tokenizer, tok)?;
    }
    Ok(())
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Target {
    Safetensors,
    Config,
    Preprocessor,
    Image,
    Tokenizer,
    Question,
}

pub(crate) const TARGETS: &[(&str, Target)] = &[
    ("safetensors", Target::Safetensors),
    ("config", Target::Config),
    ("preprocessor", Target::Preprocessor),
    ("image", Target::Image),
    ("tokenizer", Target::Tokenizer),
    ("question", Target::Question),
];

/// One case: Ok(true) when the mutated input was accepted, Ok(false) when it was refused with an
/// error (the expected outcome for most mutations). The input is kept in `input` for the report.
pub(crate) fn run_case(t: Target, rng: &mut Rng, base: &Base, exercise_every: usize, input: &mut Vec<u8>) -> bool {
    let device = burn::tensor::Device::flex();
    let files = |config: Vec<u8>, safetensors: Vec<u8>, generation: Option<Vec<u8>>| ModelFiles {
        config,
        safetensors,
        tokenizer: base.tokenizer.clone(),
        preprocessor: Some(base.preprocessor.clone()),
        generation: generation.or_else(|| Some(FUZZ_GENERATION.as_bytes().to_vec())),
    };
    let q = "What colour is the cat?";
    match t {
        Target::Safetensors => {
            *input = mutate_safetensors(rng, &base.safetensors);
            let whole = Vlm::load(&files(base.config.clone(), input.clone(), None), &device);
            // the browser's way: the same file read through byte ranges must be accepted or
            // refused alike (a panic in either is the harness's finding)
            let bytes = input.clone();
            let n = bytes.get(..8).map(|b| u64::from_le_bytes(b.try_into().unwrap()) as usize).unwrap_or(0);
            let head = bytes[..bytes.len().min(8usize.saturating_add(n.min(100_000_000)))].to_vec();
            let reader = |o: usize, l: usize| Ok(bytes.get(o..o.saturating_add(l)).map(|b| b.to_vec()).unwrap_or_default());
            let streamed = Vlm::load_weights(
                &files(base.config.clone(), Vec::new(), None),
                || zoo_prune_web::weights::WeightMap::from_reader(&head, bytes.len(), Box::new(reader)),
                &device,
                &Default::default(),
            );
            assert_eq!(
                whole.is_ok(),
                streamed.is_ok(),
                "the whole file and a reader disagree: {:?} vs {:?}",
                whole.as_ref().err().map(|e| e.to_string()),
                streamed.as_ref().err().map(|e| e.to_string())
            );
            let Ok(vlm) = whole else { return false };
            if rng.chance(exercise_every) {
                let _ = exercise(rng, &vlm, &base.image, q);
            }
            true
        }
        Target::Config => {
            let (config, generation) = if rng.chance(8) {
                (base.config.clone(), Some(mutated_json_bytes(rng, &base.generation_json)))
            } else {
                (mutated_json_bytes(rng, &base.config_json), None)
            };
            *input = config.clone();
            if let Some(g) = &generation {
                input.extend_from_slice(b"\n---- generation_config.json\n");
                input.extend_from_slice(g);
            }
            let Ok(vlm) = Vlm::load(&files(config, base.safetensors.clone(), generation), &device) else { return false };
            let _ = exercise(rng, &vlm, &base.image, q);
            true
        }
        Target::Preprocessor => {
            *input = mutated_json_bytes(rng, &base.preprocessor_json);
            let Ok(cfg) = ProcessorConfig::from_json(input, 32) else { return false };
            let (w, h) = (1 + rng.below(300), 1 + rng.below(300));
            let img = base.image.resize(w, h, zoo_prune_web::preprocess::Filter::Bilinear);
            let cfg = if rng.chance(2) { cfg.with_max_grid(rng.below(6)) } else { cfg };
            let Ok(p) = ProcessedImage::new(&img, &cfg) else { return false };
            let _ = p.token_rects(8, 2);
            true
        }
        Target::Image => {
            let mut b = rng.pick(&base.images).clone();
            if b.starts_with(b"\x89PNG") {
                mutate_png(rng, &mut b);
            } else {
                mutate_bytes(rng, &mut b);
            }
            *input = b;
            let Ok(img) = RgbImage::decode(input) else { return false };
            let cfg = ProcessorConfig::from_json(&base.preprocessor, 32).unwrap().with_max_grid(1 + rng.below(4));
            let Ok(p) = ProcessedImage::new(&img, &cfg) else { return false };
            let _ = p.token_rects(8, 2);
            if rng.chance(exercise_every) {
                if let Ok(vlm) = Vlm::load(&files(base.config.clone(), base.safetensors.clone(), None), &device) {
                    let _ = exercise(rng, &vlm, &img, q);
                }
            }
            true
        }
        Target::Tokenizer => {
            *input = mutated_json_bytes(rng, &base.tokenizer_json);
            let Ok(tok) = PromptTokenizer::from_bytes(input, 4, &[2]) else { return false };
            let question = random_question(rng);
            let _ = tok.prompt_ids(&question, rng.below(3), rng.below(3), 1 + rng.below(8));
            let ids: Vec<u32> = (0..rng.below(12)).map(|_| rng.below(400) as u32).collect();
            let _ = tok.decode(&ids);
            let mut stream = TextStream::default();
            for &id in &ids {
                let _ = stream.push(&tok, id);
            }
            true
        }
        Target::Question => {
            let question = random_question(rng);
            *input = question.clone().into_bytes();
            thread_local!(static VLM: RefCell<Option<Vlm>> = const { RefCell::new(None) });
            VLM.with(|v| {
                let mut v = v.borrow_mut();
                let vlm = v.get_or_insert_with(|| {
                    Vlm::load(&files(base.config.clone(), base.safetensors.clone(), None), &device).unwrap()
                });
                let ok = vlm.tokenizer.question_ids(&question).is_ok();
                if rng.chance(exercise_every) {
                    let _ = exercise(rng, vlm, &base.image, &question);
                } else {
                    let _ = vlm.tokenizer.prompt_ids(&question, 1, 2, 4);
                }
                ok
            })
        }
    }
}

