//! Every pruning method on the tiny_tiles checkpoint (7 tiles x 4 visual tokens): full rankings,
//! prefix budgets, per-tile shares, the scores each baseline claims to use, and pruned generation.

use crate::common;

use burn::tensor::Tensor;
use common::*;
use zoo_prune_web::readback::read_floats;
use zoo_prune_web::pipeline::EncodedImage;
use zoo_prune_web::preprocess::RgbImage;
use zoo_prune_web::prune::{rank, BudgetMode, Positions, Estimator, Fusion, Method, Proxy, PruneInputs, Ranking, ZooParams};
use zoo_prune_web::Vlm;

struct Setup {
    vlm: Vlm,
    enc: EncodedImage,
    ids: Vec<u32>,
    q_ids: Vec<u32>,
}

fn setup() -> Setup {
    let vlm = load_vlm("tiny_tiles", "flex");
    let img = RgbImage::decode(&std::fs::read(fixtures().join("photo.png")).unwrap()).unwrap();
    let p = vlm.preprocess(&img, None).unwrap();
    let q = "What colour is the cat?";
    let ids = vlm.prompt_ids(q, &p).unwrap();
    let last = vlm.config.vision_config.num_hidden_layers - 1;
    let enc = pollster::block_on(vlm.encode_until(p, 2, &[last], |_, _| std::future::ready(true))).unwrap();
    let q_ids = vlm.tokenizer.encode(q).unwrap();
    Setup { vlm, enc, ids, q_ids }
}

fn ranked(s: &Setup, m: &Method, mode: BudgetMode) -> Ranking {
    let inputs = PruneInputs::new(&s.vlm.model, &s.enc.tiles, s.vlm.config.image_token_id, &s.ids, &s.q_ids);
    pollster::block_on(rank(m, &inputs, mode)).unwrap()
}

const TILES: usize = 7;
const PER: usize = 4;

#[test]
fn every_method_gives_a_full_ranking_whose_budgets_are_prefixes() {
    let s = setup();
    for name in Method::NAMES {
        let m = Method::by_name(name, 3).unwrap();
        for mode in [BudgetMode::PerTile, BudgetMode::Global] {
            let r = ranked(&s, &m, mode);
            let mut sorted = r.order.clone();
            sorted.sort();
            assert_eq!(sorted, (0..TILES * PER).collect::<Vec<_>>(), "{name}/{mode:?}: not a permutation");
            // classroom mode replays `steps`: one step per token
            assert_eq!(r.steps.len(), TILES * PER, "{name}/{mode:?}: a step per token");
            if mode == BudgetMode::PerTile {
                // per tile: tile t's r-th pick is the (r * TILES + t)-th of the order (round robin),
                // so that every prefix holds an equal share (checked below) in a fixed tile order
                for (i, &tok) in r.order.iter().enumerate() {
                    assert_eq!(tok / PER, i % TILES, "{name}: pick {i} (token {tok}) is not from tile {}", i % TILES);
                }
            }
            // a budget of k: k distinct tokens in prompt order, each budget inside the next (a
            // prefix of one ranking), everything at k = n, clamped above n
            let mut prev: Vec<usize> = Vec::new();
            for k in 1..=TILES * PER {
                let kept = r.keep(k);
                assert_eq!(kept.len(), k, "{name}/{mode:?}: keep({k}) holds {}", kept.len());
                assert!(kept.windows(2).all(|w| w[0] < w[1]), "{name}/{mode:?}: keep({k}) not in prompt order: {kept:?}");
                assert!(prev.iter().all(|t| kept.contains(t)), "{name}/{mode:?}: keep({}) not inside keep({k})", k - 1);
                assert!(kept.contains(&r.order[k - 1]), "{name}/{mode:?}: keep({k}) lacks the {k}-th pick");
                prev = kept;
            }
            assert_eq!(prev, (0..TILES * PER).collect::<Vec<_>>());
            assert_eq!(r.keep(TILES * PER + 5), prev, "{name}/{mode:?}: a budget over n keeps n");
            // methods that only sort by a score: a global order never puts a lower score first
            if mode == BudgetMode::Global && matches!(*name, "feature-norm" | "visionzip" | "fastv") {
                let sc: Vec<f64> = r.order.iter().map(|&t| r.scores[t]).collect();
                assert!(sc.windows(2).all(|w| w[0] >= w[1]), "{name}: order not by descending score: {sc:?}");
            }
            if mode == BudgetMode::PerTile {
                // an equal share per tile at every multiple of the tile count
                for j in 1..=PER {
                    let kept = r.keep(TILES * j);
                    for t in 0..TILES {
                        let n = kept.iter().filter(|&&i| i / PER == t).count();
                        assert_eq!(n, j, "{name}: tile {t} keeps {n} of budget {}", TILES * j);
                    }
                }
            }
        }
    }
}

#[test]
fn random_is_seeded() {
    let s = setup();
    let a = ranked(&s, &Method::Random { seed: 1 }, BudgetMode::Global).order;
    assert_eq!(a, ranked(&s, &Method::Random { seed: 1 }, BudgetMode::Global).order);
    assert_ne!(a, ranked(&s, &Method::Random { seed: 2 }, BudgetMode::Global).order);
}

#[test]
fn zoo_is_reproducible_for_a_seed_and_flags_the_linear_proxy() {
    let s = setup();
    let zoo = |seed, proxy| Method::Zoo {
        params: ZooParams { seed, proxy, ..Default::default() },
        fusion: Fusion::Multiply,
    };
    let a = ranked(&s, &zoo(5, Proxy::PostLayerNorm), BudgetMode::Global);
    let b = ranked(&s, &zoo(5, Proxy::PostLayerNorm), BudgetMode::Global);
    assert_eq!(a.order, b.order);
    assert_eq!(a.scores, b.scores);
    // ... and the seed is what decides it: another seed draws other directions
    let other = ranked(&s, &zoo(6, Proxy::PostLayerNorm), BudgetMode::Global);
    assert_ne!(a.scores, other.scores, "seed 6 gives the same sensitivities as seed 5");
    assert!(a.warnings.is_empty());
    let lin = ranked(&s, &zoo(5, Proxy::Linear), BudgetMode::Global);
    assert_eq!(lin.warnings.len(), 1, "the literal linear proxy must be flagged");
    // literally computed in f32, the linear proxy's sensitivity is constant up to rounding noise,
    // the LayerNorm proxy's is not
    let spread = |v: &[f64]| {
        let hi = v.iter().copied().fold(f64::MIN, f64::max);
        (hi - v.iter().copied().fold(f64::MAX, f64::min)) / hi
    };
    assert!(spread(&lin.scores) < 1e-3, "linear spread {}", spread(&lin.scores));
    assert!(spread(&a.scores) > 1e-2, "LayerNorm proxy spread {}", spread(&a.scores));
    // the first pick of SADS is the most sensitive token
    let best = (0..a.scores.len()).fold(0, |b, i| if a.scores[i] > a.scores[b] { i } else { b });
    assert_eq!(a.order[0], best);
    // JVP and literal finite differences rank alike here
    let fd = Method::Zoo {
        params: ZooParams { seed: 5, estimator: Estimator::FiniteDifference, ..Default::default() },
        fusion: Fusion::Multiply,
    };
    let f = ranked(&s, &fd, BudgetMode::Global);
    let rel = a.scores.iter().zip(&f.scores).map(|(x, y)| ((x - y) / y).abs()).fold(0.0, f64::max);
    assert!(rel < 2e-3, "JVP vs finite differences: {rel}");
}

/// Per-token sums over each token's s x s patches of a per-patch value [tiles, 64] (8x8 patches).
fn group(per_patch: &[f32]) -> Vec<f64> {
    let mut out = vec![0f64; TILES * PER];
    for t in 0..TILES {
        for p in 0..64 {
            let (r, c) = (p / 8, p % 8);
            out[t * PER + (r / 4) * 2 + c / 4] += per_patch[t * 64 + p] as f64;
        }
    }
    out
}

#[test]
fn visionzip_scores_are_the_attention_each_token_receives() {
    let s = setup();
    let r = ranked(&s, &Method::VisionZip { layer: None }, BudgetMode::Global);
    let att = pollster::block_on(read_floats(s.enc.tiles.attentions[0].1.clone())).unwrap(); // [7, 64, 64]
    let mut received = vec![0f32; TILES * 64];
    for t in 0..TILES {
        for q in 0..64 {
            for k in 0..64 {
                received[t * 64 + k] += att[(t * 64 + q) * 64 + k] / 64.0;
            }
        }
    }
    let want = group(&received);
    for (a, b) in r.scores.iter().zip(&want) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    // the whole order is by descending score (against transformers' attention maps:
    // tests/smolvlm_files.rs)
    assert!(r.order.windows(2).all(|w| r.scores[w[0]] >= r.scores[w[1]]));
}

#[test]
fn feature_norm_orders_by_the_encoder_output_norm() {
    let s = setup();
    let r = ranked(&s, &Method::FeatureNorm, BudgetMode::Global);
    let pre = pollster::block_on(read_floats(s.enc.tiles.pre_ln.clone())).unwrap(); // [7, 64, 48]
    let sq: Vec<f32> = pre.chunks(48).map(|p| p.iter().map(|x| x * x).sum()).collect();
    let want: Vec<f64> = group(&sq).into_iter().map(f64::sqrt).collect();
    for (a, b) in r.scores.iter().zip(&want) {
        assert!((a - b).abs() < 1e-3 * b, "{a} vs {b}");
    }
    assert!(r.order.windows(2).all(|w| r.scores[w[0]] >= r.scores[w[1]]));
}

#[test]
fn prompt_aware_relevance_is_cosine_to_the_question_embedding() {
    let s = setup();
    let r = ranked(&s, &Method::PromptAware { core_share: 1.0 }, BudgetMode::Global);
    let e = pollster::block_on(read_floats(s.vlm.model.text.embed(&s.q_ids))).unwrap();
    let d = e.len() / s.q_ids.len();
    let mean: Vec<f64> = (0..d).map(|k| s.q_ids.iter().enumerate().map(|(i, _)| e[i * d + k] as f64).sum::<f64>() / s.q_ids.len() as f64).collect();
    let z = pollster::block_on(read_floats(s.enc.features())).unwrap();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    for (i, row) in z.chunks(d).enumerate() {
        let row: Vec<f64> = row.iter().map(|&x| x as f64).collect();
        let cos = row.iter().zip(&mean).map(|(a, b)| a * b).sum::<f64>() / (norm(&row) * norm(&mean));
        assert!((r.scores[i] - cos).abs() < 1e-5);
    }
    // with core_share 1 the order is pure relevance
    assert!(r.order.windows(2).all(|w| r.scores[w[0]] >= r.scores[w[1]]));
}

#[test]
fn fastv_orders_by_its_scores_and_reads_the_asked_layer() {
    // The scores themselves are checked against transformers' attention maps (LLM layer 2 of the
    // real-layout checkpoint) in tests/smolvlm_files.rs.
    let s = setup();
    let r = ranked(&s, &Method::FastV { layer: 1 }, BudgetMode::Global);
    assert!(r.order.windows(2).all(|w| r.scores[w[0]] >= r.scores[w[1]]));
    let r2 = ranked(&s, &Method::FastV { layer: 2 }, BudgetMode::Global);
    assert_ne!(r.scores, r2.scores, "a different layer gives different attention");
}

#[test]
fn pruned_prefill_sees_only_the_kept_tokens() {
    let s = setup();
    let feats = s.enc.features();
    let n = feats.dims()[0];
    let full: Vec<usize> = (0..n).collect();
    let answer = |keep: &[usize]| {
        let mut g = s.vlm.start_answer_pruned(&s.ids, feats.clone(), keep, None, Positions::Renumber, 6).unwrap();
        let len = g.prompt_len;
        let bytes = g.kv_cache_bytes();
        let mut toks = vec![];
        while let Some(t) = pollster::block_on(g.next_token(&s.vlm.model)).unwrap() {
            toks.push(t);
        }
        (len, bytes, toks)
    };
    let (len_full, bytes_full, toks_full) = answer(&full);
    // keeping everything is the unpruned path
    let mut g = s.vlm.start_answer(&s.ids, feats.clone(), &Default::default(), 6).unwrap();
    let mut unpruned = vec![];
    while let Some(t) = pollster::block_on(g.next_token(&s.vlm.model)).unwrap() {
        unpruned.push(t);
    }
    assert_eq!(toks_full, unpruned);
    assert_eq!(len_full, s.ids.len());
    let keep: Vec<usize> = (0..n).step_by(4).collect();
    let (len, bytes, _) = answer(&keep);
    assert_eq!(len, s.ids.len() - (n - keep.len()), "pruned tokens leave the prompt");
    assert!(bytes < bytes_full);
    // What the pruned prefill computes is checked against transformers fed the kept tokens as
    // inputs_embeds in tests/smolvlm_files.rs.
    // no kept token, a descending list, an index past the last token: each refused, saying why
    for bad in [vec![], vec![3, 1], vec![0, n]] {
        let e = s.vlm.start_answer_pruned(&s.ids, feats.clone(), &bad, None, Positions::Renumber, 6).err().map(|e| e.to_string());
        let want = format!("kept tokens must be ascending indices below {n} and at least one");
        assert_eq!(e.as_deref(), Some(want.as_str()), "keep {bad:?}");
    }
}

#[test]
fn info_horizon_drops_visual_tokens_at_the_deep_layer() {
    let s = setup();
    let m = Method::InfoHorizon { deep_layer: Some(1), deep_keep: 0.5, seed: 4 };
    let r = ranked(&s, &m, BudgetMode::PerTile);
    let deep = r.deep_drop.clone().expect("info-horizon has a deep drop");
    assert_eq!(deep.layer, 1);
    let keep = r.keep(16);
    let g = s.vlm.start_answer_pruned(&s.ids, s.enc.features(), &keep, Some(&deep), Positions::Renumber, 4).unwrap();
    let lens = g.cache_lens();
    let text = s.ids.len() - 28;
    assert_eq!(lens[0], text + 16, "layer 0 sees the 16 kept tokens");
    assert_eq!(lens[1], text + 8, "from layer 1 on, half of them");
    assert_eq!(lens[2], text + 8);
    // DivPrune decides the input ranking
    assert_eq!(r.order, ranked(&s, &Method::DivPrune, BudgetMode::PerTile).order);
    // with positions kept the drop runs too, with the same cache lengths
    let g = s.vlm.start_answer_pruned(&s.ids, s.enc.features(), &keep, Some(&deep), Positions::Keep, 4).unwrap();
    assert_eq!(g.cache_lens(), lens);
}

#[test]
fn kept_positions_travel_with_their_tokens_through_a_deep_drop() {
    // With positions kept a token's RoPE position is its place in the full prompt, whatever was
    // dropped: a deep drop that keeps every token changes nothing, and a drop at layer 0 (before
    // any layer has run) equals pruning those tokens at the input. Both are checked against the
    // pipeline without a drop, and renumbered positions must give other logits.
    let s = setup();
    let keep: Vec<usize> = (0..28).step_by(2).collect();
    let last = |p: zoo_prune_web::pipeline::PrunedPrefill| -> Vec<f32> {
        let mut cache = s.vlm.model.text.new_cache();
        let out = s.vlm.model.text.forward(p.embeds, &mut cache, &p.opts);
        let n = out.hidden.dims()[1];
        let logits: Tensor<3> = s.vlm.model.text.logits(out.hidden.narrow(1, n - 1, 1));
        pollster::block_on(read_floats(logits)).unwrap()
    };
    let base = last(s.vlm.pruned_prefill(&s.ids, s.enc.features(), &keep, None, Positions::Keep).unwrap());
    let all = zoo_prune_web::prune::DeepDrop { layer: 1, keep: 1.0, seed: 3 };
    let same = last(s.vlm.pruned_prefill(&s.ids, s.enc.features(), &keep, Some(&all), Positions::Keep).unwrap());
    assert!(max_abs_diff(&base, &same) < 1e-5, "a drop that keeps everything changed the logits");
    // a layer-0 drop of half the visual tokens = pruning them at the input, positions kept
    let half = zoo_prune_web::prune::DeepDrop { layer: 0, keep: 0.5, seed: 3 };
    let p = s.vlm.pruned_prefill(&s.ids, s.enc.features(), &keep, Some(&half), Positions::Keep).unwrap();
    let drop = p.opts.drop.clone().unwrap();
    let image = s.vlm.config.image_token_id;
    // which of the kept visual tokens survive the drop, as indices into all 28
    let vis_positions: Vec<usize> = p.ids.iter().enumerate().filter(|(_, &t)| t == image).map(|(i, _)| i).collect();
    let survivors: Vec<usize> =
        vis_positions.iter().enumerate().filter(|(_, q)| drop.keep.contains(q)).map(|(j, _)| keep[j]).collect();
    assert_eq!(survivors.len(), 7);
    let dropped = last(p);
    let direct = last(s.vlm.pruned_prefill(&s.ids, s.enc.features(), &survivors, None, Positions::Keep).unwrap());
    assert!(max_abs_diff(&dropped, &direct) < 1e-4, "a layer-0 drop differs from pruning at the input");
    // renumbered, the same layer-0 drop also equals input pruning (both renumber contiguously)
    let p = s.vlm.pruned_prefill(&s.ids, s.enc.features(), &keep, Some(&half), Positions::Renumber).unwrap();
    let renum = last(p);
    let direct_r = last(s.vlm.pruned_prefill(&s.ids, s.enc.features(), &survivors, None, Positions::Renumber).unwrap());
    assert!(max_abs_diff(&renum, &direct_r) < 1e-4);
    assert!(max_abs_diff(&dropped, &renum) > 1e-3, "kept and renumbered positions gave the same logits");
}


#[test]
fn last_mlp_proxy_matches_a_hand_built_finite_difference() {
    // ZOO with the last encoder MLP block inside the proxy, checked against central differences
    // written out here from the model's own modules, on a few tokens.
    use zoo_prune_web::model::pixel_shuffle;
    use zoo_prune_web::prune::zoo::{directions, sensitivity};
    let s = setup();
    let p = ZooParams { m: 4, seed: 9, proxy: Proxy::LastMlp, ..Default::default() };
    let pre_mlp = &s.enc.tiles.pre_mlp;
    // the proxy's input reproduces the encoder output
    let last = s.vlm.model.vision.layers.last().unwrap();
    let out = pollster::block_on(read_floats(last.mlp_block(pre_mlp.clone()))).unwrap();
    let want = pollster::block_on(read_floats(s.enc.tiles.pre_ln.clone())).unwrap();
    assert!(max_abs_diff(&out, &want) < 1e-4);
    let got = pollster::block_on(read_floats(sensitivity(&s.vlm.model, pre_mlp, &p))).unwrap();
    let sc = s.vlm.model.connector.scale_factor;
    let x = pixel_shuffle(pre_mlp.clone(), sc); // [7, 4, 16*48]
    let [t, n, dd] = x.dims();
    let x = x.reshape([t * n, dd]);
    let u = directions(&p, sc * sc, dd / (sc * sc), &s.vlm.device).reshape([p.m, dd]);
    let w = s.vlm.model.connector.proj.weight.val();
    let proxy = |v: Tensor<2>| {
        let k = v.dims()[0];
        let patches = v.reshape([k, sc * sc, dd / (sc * sc)]);
        let y = s.vlm.model.vision.post_layernorm.forward(last.mlp_block(patches));
        y.reshape([k, dd]).matmul(w.clone())
    };
    for tok in [0usize, 5, 27] {
        let xi = x.clone().narrow(0, tok, 1);
        let mut acc = 0.0;
        for j in 0..p.m {
            let hu = u.clone().narrow(0, j, 1) * p.h;
            let d = (proxy(xi.clone() + hu.clone()) - proxy(xi.clone() - hu)) / (2.0 * p.h);
            let v = pollster::block_on(read_floats(d)).unwrap();
            acc += v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        }
        let want = acc / p.m as f64;
        assert!(((got[tok] as f64) - want).abs() < 1e-3 * want, "token {tok}: {} vs {want}", got[tok]);
    }
    // and rank() accepts it
    let r = ranked(&s, &Method::Zoo { params: p, fusion: Fusion::Multiply }, BudgetMode::Global);
    assert!(r.warnings.is_empty());
}

#[test]
fn nan_scores_are_ordered_last_by_a_total_order() {
    use zoo_prune_web::prune::select::order_by_score;
    // NaN scores come from NaN weights (a damaged checkpoint loads: NaN is a valid float). The
    // comparator was partial_cmp().unwrap_or(Equal): NaN "equal to everything" is not a total
    // order, which Rust's sort may answer with a panic, and it left NaN tokens anywhere.
    let mut scores: Vec<f64> = (0..200).map(|i| ((i * 37) % 101) as f64).collect();
    for i in (0..200).step_by(3) {
        scores[i] = f64::NAN;
    }
    let order: Vec<usize> = order_by_score(&scores).iter().map(|s| s.token).collect();
    let mut want: Vec<usize> = (0..200).filter(|&i| !scores[i].is_nan()).collect();
    want.sort_by(|&a, &b| scores[b].partial_cmp(&scores[a]).unwrap().then(a.cmp(&b)));
    want.extend((0..200).filter(|&i| scores[i].is_nan()));
    assert_eq!(order, want);
    // -0.0 and 0.0 still tie (broken by index), as partial_cmp has it
    let order: Vec<usize> = order_by_score(&[0.0, -0.0, 0.0, 1.0]).iter().map(|s| s.token).collect();
    assert_eq!(order, vec![3, 0, 1, 2]);
}
