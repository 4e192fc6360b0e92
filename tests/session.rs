//! The page's session (src/session/), driven natively as the Worker drives it through web.rs:
//! what is encoded, ranked and stale, the budget as a prefix of the ranking, the method parameters
//! the page and the CLI share. The answers are checked against paths that do not go through the
//! session (the pipeline directly).

use crate::common;

use common::{fixtures, load_vlm};
use crate::pruning_parity::{agree_until_near_tie, Case};
use pollster::block_on;
use zoo_prune_web::generate::Generation;
use zoo_prune_web::model::ForwardOptions;
use zoo_prune_web::preprocess::RgbImage;
use zoo_prune_web::prompt::TextStream;
use zoo_prune_web::prune::{self, BudgetMode, Method, MethodParams, Positions, PruneInputs, RelevanceSign};
use zoo_prune_web::session::{native_clock, Session};
use zoo_prune_web::Vlm;

const Q: &str = "What colour is the cat?";

fn photo() -> Vec<u8> {
    std::fs::read(fixtures().join("photo.png")).unwrap()
}

fn session() -> Session {
    Session::new(load_vlm("tiny_tiles", "flex"), native_clock)
}

fn params(json: &str) -> MethodParams {
    MethodParams::from_json(json).unwrap()
}

fn err<T: std::fmt::Debug>(r: zoo_prune_web::Result<T>) -> String {
    r.expect_err("an error was expected").to_string()
}

/// Greedy tokens of a generation, to the end.
fn tokens(vlm: &Vlm, mut g: Generation) -> Vec<u32> {
    let mut out = vec![];
    while let Some(t) = block_on(g.next_token(&vlm.model)).unwrap() {
        out.push(t);
    }
    out
}

/// The text the page streams for these tokens (pieces joined).
fn streamed(vlm: &Vlm, toks: &[u32]) -> String {
    let mut st = TextStream::default();
    toks.iter().map(|&t| st.push(&vlm.tokenizer, t).unwrap()).collect()
}

/// The session's whole answer, and the token count its timings report.
fn answer(s: &mut Session, k: usize) -> (String, usize) {
    s.answer(k, 8, Positions::Renumber).unwrap();
    let mut text = String::new();
    while let Some(p) = block_on(s.next_piece()).unwrap() {
        assert!(!p.is_empty(), "pieces are never empty");
        text.push_str(&p);
    }
    (text, s.timings().tokens)
}

#[test]
fn calls_out_of_order_say_what_to_call_first() {
    let mut s = session();
    assert!(err(block_on(s.rank("zoo", &params(""), "per-tile"))).contains("no image is encoded yet"));
    assert!(err(s.answer(3, 4, Positions::Renumber)).contains("no image is encoded yet"));
    assert!(err(s.set_question(Q)).contains("no image is encoded yet"));
    block_on(s.encode(&photo(), Q, 0, |_, _| {})).unwrap();
    assert!(err(s.answer(3, 4, Positions::Renumber)).contains("no ranking of this image yet"));
    assert!(err(block_on(s.rank("zoo", &params(""), "sideways"))).contains("unknown budget mode \"sideways\""));
    assert!(err(block_on(s.rank("nope", &params(""), "per-tile"))).contains("unknown pruning method \"nope\""));
    let r = block_on(s.rank("random", &params(r#"{"seed": 5}"#), "global")).unwrap();
    // a bad parameter or budget changes nothing: the previous ranking stays (the page keeps it drawn)
    assert!(err(block_on(s.rank("zoo", &params(r#"{"m": 0}"#), "global"))).contains("parameter m (ZOO's number of directions) must be at least 1"));
    assert!(err(block_on(s.rank("zoo", &params(""), "sideways"))).contains("unknown budget mode \"sideways\""));
    assert!(s.has_ranking());
    let n = r.order.len();
    assert!(err(s.answer(0, 4, Positions::Renumber)).contains(&format!("between 1 and {n} visual tokens")));
    assert!(err(s.answer(n + 1, 4, Positions::Renumber)).contains(&format!("between 1 and {n} visual tokens")));
}

#[test]
fn encode_reports_the_grid_and_progress_and_a_bad_image_drops_the_previous_one() {
    let mut s = session();
    let mut progress = vec![];
    let e = block_on(s.encode(&photo(), Q, 0, |d, t| progress.push((d, t)))).unwrap();
    // tiny_tiles: a 2 x 3 grid plus the global image, 4 tokens per tile
    assert_eq!((e.rows, e.cols, e.tiles), (2, 3, 7));
    assert_eq!(e.visual_tokens, 28);
    assert_eq!(e.grid_tokens, 24);
    assert_eq!(e.token_rects.len(), 28);
    assert_eq!(progress, (1..=7).map(|d| (d, 7)).collect::<Vec<_>>());
    // three tiles per forward (the CLI's --chunk): progress per chunk, the same features
    let mut chunked = session();
    chunked.set_chunk(3);
    let mut progress3 = vec![];
    let e3 = block_on(chunked.encode(&photo(), Q, 0, |d, t| progress3.push((d, t)))).unwrap();
    assert_eq!(progress3, vec![(3, 7), (6, 7), (7, 7)]);
    assert_eq!((e3.visual_tokens, e3.token_rects.len()), (e.visual_tokens, e.token_rects.len()));
    let (r1, r3) = (
        block_on(s.rank("feature-norm", &params(""), "global")).unwrap(),
        block_on(chunked.rank("feature-norm", &params(""), "global")).unwrap(),
    );
    assert_eq!(r1.order, r3.order, "chunks of 3 tiles rank as tile by tile");
    // a go_on that answers false stops after that chunk and holds no image
    let stopped = block_on(chunked.encode_until(&photo(), Q, 0, |d, _| std::future::ready(d < 3)));
    assert!(err(stopped).contains("the encode stopped after tile 3 of 7"));
    assert!(!chunked.has_encoding());
    // tiling() predicts what encode cuts, without encoding
    let img = RgbImage::decode(&photo()).unwrap();
    let choices = s.tiling(img.width as u32, img.height as u32).unwrap();
    assert_eq!(choices.len(), 5);
    assert_eq!((choices[0].rows, choices[0].cols, choices[0].visual_tokens), (e.rows, e.cols, e.visual_tokens));
    assert!(err(s.tiling(0, 64)).contains("empty"));
    block_on(s.rank("feature-norm", &params(""), "per-tile")).unwrap();
    assert!(s.has_encoding() && s.has_ranking());
    let bad = block_on(s.encode(&[1, 2, 3, 4, 5, 6, 7, 8], Q, 0, |_, _| {}));
    assert!(err(bad).starts_with("image: "));
    assert!(!s.has_encoding() && !s.has_ranking(), "a failed encode must not leave the old image's state behind");
}

#[test]
fn a_new_question_drops_only_the_rankings_that_read_it() {
    let mut s = session();
    block_on(s.encode(&photo(), Q, 0, |_, _| {})).unwrap();
    for (method, reads_question) in [("fastv", true), ("prompt-aware", true), ("feature-norm", false), ("zoo", false)] {
        block_on(s.rank(method, &params(r#"{"seed": 1}"#), "per-tile")).unwrap();
        s.set_question(Q).unwrap();
        assert!(s.has_ranking(), "{method}: the same question keeps the ranking");
        s.set_question("Where is the dog?").unwrap();
        assert_eq!(s.has_ranking(), !reads_question, "{method}: another question");
        // an empty question is refused and changes nothing
        let had = s.has_ranking();
        assert!(err(s.set_question("  ")).contains("the question is empty"));
        assert_eq!(s.has_ranking(), had);
        s.set_question(Q).unwrap();
    }
}

#[test]
fn the_answer_keeps_the_first_k_of_the_ranking_and_all_tokens_is_the_unpruned_answer() {
    let mut s = session();
    let e = block_on(s.encode(&photo(), Q, 0, |_, _| {})).unwrap();
    let n = e.visual_tokens;
    let r = block_on(s.rank("zoo", &params(r#"{"seed": 3, "m": 8}"#), "per-tile")).unwrap();
    assert_eq!(r.params.m, Some(8));
    assert_eq!(r.params.seed, Some(3));
    assert_eq!(r.budget, "per-tile");

    // the parameters reach the computation: another seed draws other directions
    let r4 = block_on(s.rank("zoo", &params(r#"{"seed": 4, "m": 8}"#), "per-tile")).unwrap();
    assert_ne!(r.scores, r4.scores, "seed 4 gives seed 3's sensitivities");
    // the session's whole path (decode, preprocess, encode, ZOO, SADS) against the independent
    // numpy reference (tests/pruning_reference) on HF's encoder states of this photo, with the
    // reference's parameters: the same picks until the reference's first near-tie (tolerance as
    // in pruning_parity: f32 on our side, f64 there)
    let c = Case::load("tiny_tiles");
    let json = format!(r#"{{"seed": {}, "m": {}, "h": {}}}"#, c.u("seed"), c.u("m"), c.f("h"));
    let z = block_on(s.rank("zoo", &params(&json), "global")).unwrap();
    let want = c.order("sads_multiply");
    let agreed = agree_until_near_tie(&z.order, &want, &c.f64s("sads_multiply_margin"), &c.f64s("sads_multiply_score"), 1e-4);
    assert!(agreed >= n / 4, "only {agreed} of {n} picks compared before a near-tie");
    // back to the ranking the answers below use
    let r = block_on(s.rank("zoo", &params(r#"{"seed": 3, "m": 8}"#), "per-tile")).unwrap();

    // the answers' reference: the pipeline without the session, on a second instance of the model
    let vlm = load_vlm("tiny_tiles", "flex");
    let img = RgbImage::decode(&photo()).unwrap();
    let processed = vlm.preprocess(&img, None).unwrap();
    let ids = vlm.prompt_ids(Q, &processed).unwrap();
    let encoded = pollster::block_on(vlm.encode(processed, &[])).unwrap();

    // all tokens: the unpruned generation
    let all = tokens(&vlm, vlm.start_answer(&ids, encoded.features(), &ForwardOptions::default(), 8).unwrap());
    let (text, count) = answer(&mut s, n);
    assert_eq!(text, streamed(&vlm, &all));
    assert_eq!(count, all.len());
    // without a ranking (the CLI without --method): every token, the same unpruned generation
    s.answer_unpruned(8, Positions::Renumber).unwrap();
    let mut unpruned = String::new();
    while let Some(p) = block_on(s.next_piece()).unwrap() {
        unpruned.push_str(&p);
    }
    assert_eq!(unpruned, streamed(&vlm, &all));
    assert_eq!((s.timings().kept_tokens, s.timings().method.as_deref()), (n, None));
    // k tokens: the first k of the order, in prompt order
    let k = 7;
    let mut keep = r.order[..k].to_vec();
    keep.sort_unstable();
    assert_eq!(s.kept(k).unwrap(), keep, "kept(k): the first k of the order, in prompt order");
    assert!(err(s.kept(n + 1)).contains(&format!("between 1 and {n} visual tokens")));
    let pruned = tokens(&vlm, vlm.start_answer_pruned(&ids, encoded.features(), &keep, None, Positions::Renumber, 8).unwrap());
    let (text_k, _) = answer(&mut s, k);
    assert_eq!(text_k, streamed(&vlm, &pruned));
    assert_ne!(all, pruned, "7 of 28 tokens changes this answer (else the comparison shows nothing)");
    let t = s.timings();
    assert_eq!((t.kept_tokens, t.visual_tokens, t.method.as_deref()), (k, n, Some("zoo")));
    assert_eq!(t.prompt_tokens, ids.len() - (n - k), "the pruned prompt drops n - k image tokens");
    assert!(t.first_token_ms.is_some() && t.total_ms.is_some());
}

#[test]
fn stop_ends_the_answer() {
    let mut s = session();
    block_on(s.encode(&photo(), Q, 0, |_, _| {})).unwrap();
    block_on(s.rank("divprune", &params(""), "global")).unwrap();
    s.answer(5, 8, Positions::Renumber).unwrap();
    block_on(s.next_piece()).unwrap();
    s.stop();
    assert_eq!(block_on(s.next_piece()).unwrap(), None);
    assert!(s.timings().total_ms.is_some());
}

#[test]
fn visionzip_computes_the_maps_of_its_layer_once_asked() {
    let mut s = session();
    block_on(s.encode(&photo(), Q, 0, |_, _| {})).unwrap();
    let layers = s.vlm.config.vision_config.num_hidden_layers;
    // default: the last layer, made explicit in the report
    let last = block_on(s.rank("visionzip", &params(""), "global")).unwrap();
    assert_eq!(last.params.layer, Some(layers - 1));
    let first = block_on(s.rank("visionzip", &params(r#"{"layer": 0}"#), "global")).unwrap();
    // the reference: an encode that computed layer 0's maps from the start
    let vlm = load_vlm("tiny_tiles", "flex");
    let img = RgbImage::decode(&photo()).unwrap();
    let processed = vlm.preprocess(&img, None).unwrap();
    let ids = vlm.prompt_ids(Q, &processed).unwrap();
    let encoded = pollster::block_on(vlm.encode(processed, &[0])).unwrap();
    let inputs = PruneInputs::new(&vlm.model, &encoded.tiles, vlm.config.image_token_id, &ids, &[]);
    let reference = block_on(prune::rank(&Method::VisionZip { layer: Some(0) }, &inputs, BudgetMode::Global)).unwrap();
    assert_eq!(first.order, reference.order);
    let scores: Vec<f64> = first.scores.iter().map(|s| s.expect("VisionZip scores every token")).collect();
    assert_eq!(scores, reference.scores);
}

#[test]
fn method_parameters_are_checked_with_messages_that_name_the_key() {
    let s = session();
    let c = &s.vlm.config;
    let build = |name: &str, json: &str| MethodParams::from_json(json).and_then(|p| p.build(name, c));
    let e = |name: &str, json: &str| build(name, json).expect_err(json).to_string();
    assert!(e("zoo", r#"{"bogus": 1}"#).contains("unknown method parameter \"bogus\""));
    assert!(e("divprune", r#"{"m": 8}"#).contains("parameter m does not apply to the method divprune"));
    assert!(e("zoo", r#"{"m": "many"}"#).contains("parameter m must be a non-negative integer"));
    assert!(e("zoo", r#"{"m": 0}"#).contains("at least 1"));
    assert!(e("zoo", r#"{"h": -1}"#).contains("must be > 0"));
    assert!(e("zoo", r#"{"fusion": "max"}"#).contains("parameter fusion must be one of"));
    assert!(e("zoo", r#"{"proxy": "x"}"#).contains("parameter proxy must be one of"));
    assert!(e("zoo", "{m: 8").contains("not valid JSON"));
    assert!(e("zoo", "[8]").contains("must be a JSON object"));
    assert!(e("prompt-aware", r#"{"core_share": 1.5}"#).contains("between 0 and 1"));
    let tl = c.text_config.num_hidden_layers;
    assert!(e("fastv", &format!(r#"{{"layer": {tl}}}"#)).contains(&format!("the language model has {tl} layers")));
    let vl = c.vision_config.num_hidden_layers;
    assert!(e("visionzip", &format!(r#"{{"layer": {vl}}}"#)).contains(&format!("the vision encoder has {vl} layers")));
    assert!(e("info-horizon", r#"{"deep_keep": -0.1}"#).contains("between 0 and 1"));
    assert!(e("cdpruner", r#"{"relevance": "both"}"#).contains("parameter relevance must be one of"));
    assert!(e("zoo", r#"{"relevance": "plain"}"#).contains("parameter relevance does not apply to the method zoo"));
    assert!(matches!(build("cdpruner", r#"{"relevance": "plain"}"#).unwrap(), Method::CdPruner { sign: RelevanceSign::Plain }));

    // values reach the method; seed applies to every method; the CLI's flags fill the same struct
    match build("zoo", r#"{"seed": 9, "m": 8, "h": 0.5, "fusion": "sum", "proxy": "linear"}"#).unwrap() {
        Method::Zoo { params, fusion } => {
            assert_eq!((params.seed, params.m, params.h), (9, 8, 0.5));
            assert_eq!(fusion.name(), "sum");
            assert_eq!(params.proxy.name(), "linear");
        }
        m => panic!("{m:?}"),
    }
    let cli = MethodParams { seed: Some(9), layer: Some(1), ..Default::default() };
    assert_eq!(cli, params(r#"{"seed": 9, "layer": 1}"#));
    assert!(matches!(cli.build("fastv", c).unwrap(), Method::FastV { layer: 1 }));
    assert!(matches!(build("divprune", r#"{"seed": 4}"#).unwrap(), Method::DivPrune));
    match build("info-horizon", r#"{"deep_layer": 1, "deep_keep": 0.25, "seed": 2}"#).unwrap() {
        Method::InfoHorizon { deep_layer, deep_keep, seed } => assert_eq!((deep_layer, deep_keep, seed), (Some(1), 0.25, 2)),
        m => panic!("{m:?}"),
    }
}

#[test]
fn info_lists_each_methods_own_parameters() {
    let s = session();
    let info = s.info();
    let keys = |m: &str| -> Vec<String> {
        let v = serde_json::to_value(&info.method_defaults[m]).unwrap();
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys("zoo"), ["estimator", "fusion", "h", "m", "proxy", "seed"]);
    assert_eq!(keys("divprune"), Vec::<String>::new());
    assert_eq!(keys("fastv"), ["layer"]);
    assert_eq!(keys("info-horizon"), ["deep_keep", "deep_layer", "seed"]);
    assert_eq!(keys("cdpruner"), ["relevance"]);
    let cd = serde_json::to_value(&info.method_defaults["cdpruner"]).unwrap();
    assert_eq!(cd["relevance"], RelevanceSign::DEFAULT.name());
    // info-horizon's default layer is chosen when ranking: null, not a number
    let ih = serde_json::to_value(&info.method_defaults["info-horizon"]).unwrap();
    assert!(ih["deep_layer"].is_null());
    assert_eq!(info.prompt_methods, ["prompt-aware", "fastv", "cdpruner"]);
    assert_eq!(info.methods.len(), Method::NAMES.len());
}

#[test]
fn agreement_numbers_are_those_of_the_two_orders() {
    use zoo_prune_web::prune::agreement::{overlap_curve, spearman_orders, spearman_scores};
    // by hand: identical and reversed orders, a swap of neighbours
    assert_eq!(spearman_orders(&[0, 1, 2, 3], &[0, 1, 2, 3]), 1.0);
    assert_eq!(spearman_orders(&[0, 1, 2, 3], &[3, 2, 1, 0]), -1.0);
    // one swap: d = (1, 1, 0, 0), 1 - 6 * 2 / (4 * 15) = 0.8
    assert!((spearman_orders(&[0, 1, 2, 3], &[1, 0, 2, 3]) - 0.8).abs() < 1e-12);
    assert_eq!(overlap_curve(&[0, 1, 2, 3], &[3, 1, 0, 2]), vec![0, 1, 2, 4]);
    // scores: ties get average ranks; scores that sort like an order give that order's rho
    assert_eq!(spearman_scores(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]), Some(1.0));
    assert_eq!(spearman_scores(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]), None);
    assert_eq!(spearman_scores(&[f64::NAN, 1.0], &[1.0, 2.0]), None);

    // the session: against the feature norm, and a second method, from their own rankings
    let mut s = session();
    block_on(s.encode(&photo(), Q, 0, |_, _| {})).unwrap();
    let zoo = block_on(s.rank("zoo", &params(r#"{"m": 8}"#), "global")).unwrap();
    let mut other = session();
    block_on(other.encode(&photo(), Q, 0, |_, _| {})).unwrap();
    let norm = block_on(other.rank("feature-norm", &params(""), "global")).unwrap();
    let div = block_on(other.rank("divprune", &params(""), "global")).unwrap();
    let rho = zoo.spearman_vs_norm.expect("a number");
    assert!((rho - spearman_orders(&zoo.order, &norm.order)).abs() < 1e-12);
    let c = block_on(s.compare("divprune", &params(""))).unwrap();
    assert_eq!(c.overlap.len(), zoo.order.len());
    for k in 1..=zoo.order.len() {
        let both = zoo.order[..k].iter().filter(|t| div.order[..k].contains(t)).count();
        assert_eq!(c.overlap[k - 1], both, "budget {k}");
    }
    assert!((c.spearman.unwrap() - spearman_orders(&zoo.order, &div.order)).abs() < 1e-12);
    // comparing leaves the ranking answers use alone
    let (text, _) = answer(&mut s, 5);
    assert_eq!(s.timings().method.as_deref(), Some("zoo"));
    let mut again = session();
    block_on(again.encode(&photo(), Q, 0, |_, _| {})).unwrap();
    block_on(again.rank("zoo", &params(r#"{"m": 8}"#), "global")).unwrap();
    assert_eq!(text, answer(&mut again, 5).0);
}

#[test]
fn an_evaluate_scene_answers_each_row_and_ratio_as_the_pipeline_does_and_keeps_the_page_state() {
    let mut s = session();
    block_on(s.encode(&photo(), Q, 0, |_, _| {})).unwrap();
    block_on(s.rank("zoo", &MethodParams::default(), "per-tile")).unwrap();
    let specs = ["zoo".to_string(), "random".to_string(), "visionzip".to_string()];
    let positions = ["renumber".to_string(), "keep".to_string()];
    let ratios = [1.0, 0.25];
    let mut calls = vec![];
    let out = block_on(s.evaluate_scene(&photo(), 0, Q, "white", "word", &specs, &positions, &ratios, 6, |d, t| {
        calls.push((d, t));
        std::future::ready(true)
    }))
    .unwrap()
    .expect("not stopped");
    // one progress call per answer, rows = specs x positions
    assert_eq!(calls, (1..=12).map(|d| (d, 12)).collect::<Vec<_>>());
    assert_eq!(out.answers.len(), 6);
    // the same answers by another path: encode (with VisionZip's maps), rank, keep, answer_kept
    let vlm = &s.vlm;
    let img = RgbImage::decode(&photo()).unwrap();
    let last = vlm.config.vision_config.num_hidden_layers - 1;
    let enc = pollster::block_on(vlm.encode(vlm.preprocess(&img, None).unwrap(), &[last])).unwrap();
    let ids = vlm.prompt_ids(Q, &enc.processed).unwrap();
    let q_ids = vlm.tokenizer.question_ids(Q).unwrap();
    let n = enc.features().dims()[0];
    assert_eq!(out.tokens, n);
    let inputs = PruneInputs::new(&vlm.model, &enc.tiles, vlm.config.image_token_id, &ids, &q_ids);
    for (m, name) in specs.iter().enumerate() {
        let ranking = block_on(prune::rank(&Method::by_name(name, 0).unwrap(), &inputs, BudgetMode::PerTile)).unwrap();
        for (p, pos) in [Positions::Renumber, Positions::Keep].into_iter().enumerate() {
            for (r, &ratio) in ratios.iter().enumerate() {
                let keep = ranking.keep(prune::budget(n, ratio));
                let want = vlm.answer_kept(&ids, &enc, &keep, ranking.deep_drop.as_ref(), pos, 6).unwrap();
                let row = m * 2 + p;
                assert_eq!(out.answers[row][r], want, "{name} {pos:?} at {ratio}");
                let words: Vec<String> = want.to_lowercase().split(|c: char| !c.is_alphanumeric()).map(String::from).collect();
                assert_eq!(out.right[row][r], words.iter().any(|w| w == "white" || w == "whites"), "{want:?}");
            }
        }
    }
    // the page's image and ranking are untouched
    assert!(s.has_encoding() && s.has_ranking());
    // stopped after the third answer: None
    let stopped = block_on(s.evaluate_scene(&photo(), 0, Q, "white", "exact", &specs, &positions, &ratios, 6, |d, _| {
        std::future::ready(d < 3)
    }))
    .unwrap();
    assert!(stopped.is_none());
    // bad settings are refused with what is wrong
    let run = |s: &mut Session, rule: &str, specs: &[String], ratios: &[f64]| {
        err(block_on(s.evaluate_scene(&photo(), 0, Q, "white", rule, specs, &positions, ratios, 6, |_, _| {
            std::future::ready(true)
        })))
    };
    assert!(run(&mut s, "fuzzy", &specs, &ratios).contains("exact"));
    assert!(run(&mut s, "word", &[], &ratios).contains("at least one method"));
    assert!(run(&mut s, "word", &specs, &[0.0]).contains("(0, 1]"));
    assert!(run(&mut s, "word", &["zoo:bogus".to_string()], &ratios).contains("not a variant"));
}
