//! The built-in model's groundwork (issue 5): word-level tokenizer, config / processor settings,
//! writing an HF-layout folder that the normal loader reads back, and a training step.

use std::collections::HashSet;

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};
use zoo_prune_web::builtin::{self, batch_loss, DataSource, Example, Sizes, TILE};
use zoo_prune_web::model::{ForwardOptions, Idefics3};
use zoo_prune_web::preprocess::ProcessedImage;
use zoo_prune_web::prompt::PromptTokenizer;
use zoo_prune_web::scenes::{scene_seed, tokenize, QaKind, Scene, Split};
use zoo_prune_web::{ModelFiles, Vlm};

fn prompt_tokenizer() -> PromptTokenizer {
    let c = Sizes::builtin().config();
    PromptTokenizer::from_bytes(builtin::tokenizer_json().as_bytes(), c.image_token_id, &[]).unwrap()
}

#[test]
fn tokenizer_covers_every_question_and_answer_of_every_kind() {
    let tok = prompt_tokenizer();
    let unk = tok.tokenizer.token_to_id("<unk>").unwrap();
    let cfg = builtin::scene_config();
    let mut kinds = HashSet::new();
    let mut n = 0;
    for i in 0..400 {
        for split in [Split::Train, Split::Test] {
            let seed = scene_seed(split, i);
            let scene = Scene::generate(seed, &cfg);
            for qa in scene.questions(seed) {
                kinds.insert(qa.kind);
                for text in [&qa.question, &qa.answer] {
                    let ids = tok.encode(text).unwrap();
                    assert!(!ids.contains(&unk), "<unk> in {text:?}: {ids:?}");
                    // one id per vocabulary word, and decoding gives the words back
                    let words = tokenize(text);
                    assert_eq!(ids.len(), words.len(), "{text:?}");
                    assert_eq!(tok.decode(&ids).unwrap(), words.join(" "));
                }
                n += 1;
            }
        }
    }
    assert_eq!(kinds.len(), QaKind::ALL.len(), "kinds seen: {kinds:?}");
    assert!(n > 5000, "{n} questions");
    // an unknown word is <unk>, upper case is folded
    let ids = tok.encode("What colour is the Zebra?").unwrap();
    assert_eq!(ids[0], tok.tokenizer.token_to_id("what").unwrap());
    assert_eq!(ids[4], unk);
}

#[test]
fn prompt_ids_are_the_chat_template_token_by_token() {
    let tok = prompt_tokenizer();
    let id = |t: &str| tok.tokenizer.token_to_id(t).unwrap_or_else(|| panic!("no {t:?}"));
    let q = "is the red circle on the left or the right?";
    let ids = tok.prompt_ids(q, 0, 0, 64).unwrap();
    let mut want = vec![id("<|im_start|>"), id("user"), id(":"), id("<fake_token_around_image>"), id("<global-img>")];
    want.extend(std::iter::repeat(id("<image>")).take(64));
    want.push(id("<fake_token_around_image>"));
    want.extend(tokenize(q).iter().map(|w| id(w)));
    want.extend([id("<end_of_utterance>"), id("\n"), id("assistant"), id(":")]);
    assert_eq!(ids, want);
    assert_eq!(id("<image>"), Sizes::builtin().config().image_token_id);
    // the split-image prompt (page tiling menu, up to 4 x 4 here): row/col markers and "\n" known
    let unk = id("<unk>");
    let ids = tok.prompt_ids(q, 4, 4, 64).unwrap();
    assert!(!ids.contains(&unk));
    assert!(ids.contains(&id("<row_4_col_4>")));
    assert_eq!(ids.iter().filter(|&&t| t == id("\n")).count(), 4 + 1 + 1);
    // decoding without skipping specials gives the prompt's pieces back, space-separated
    let text = tok.tokenizer.decode(&tok.prompt_ids(q, 0, 0, 2).unwrap(), false).unwrap();
    assert_eq!(
        text,
        "<|im_start|> user : <fake_token_around_image> <global-img> <image> <image> \
         <fake_token_around_image> is the red circle on the left or the right ? <end_of_utterance> \n assistant :"
    );
}

#[test]
fn config_and_processor_keep_a_scene_as_one_unresampled_tile() {
    let sizes = Sizes::builtin();
    let c = sizes.config();
    assert_eq!(c.tokens_per_tile(), 64);
    assert_eq!(c.text_config.vocab_size, builtin::vocab_size());
    let params: usize = builtin::init_tensors(&c, 0).iter().map(|t| t.2.len()).sum();
    assert!(params * 4 <= 20_000_000, "{params} parameters");
    let data = DataSource::builtin(&sizes);
    let layout = data.processor.layout(TILE, TILE);
    assert_eq!((layout.num_tiles, layout.rows, layout.cols, layout.resized), (1, 0, 0, (TILE, TILE)));
    let scene = Scene::generate(scene_seed(Split::Train, 3), &builtin::scene_config());
    assert_eq!((scene.width, scene.height), (TILE, TILE));
    let p = ProcessedImage::new(&builtin::scene_image(&scene), &data.processor).unwrap();
    assert_eq!(p.num_tiles, 1);
    // exactly (x / 255 - 0.5) / 0.5 of the scene's own pixels: no resampling on the way
    for ch in 0..3 {
        for i in 0..TILE * TILE {
            let x = ((scene.pixels[i * 3 + ch] as f64 / 255.0) as f32 - 0.5) / 0.5;
            assert_eq!(p.pixels[ch * TILE * TILE + i], x);
        }
    }
    let ex = data.example(Split::Train, 3).unwrap();
    assert_eq!(ex.prompt.iter().filter(|&&t| t == c.image_token_id).count(), 64);
    assert_eq!(*ex.answer.last().unwrap(), data.eou_id);
}

fn logits_of(model: &Idefics3, ex: &Example, data: &DataSource) -> Vec<f32> {
    let device = model.device();
    let px = Tensor::<4>::from_data(
        burn::tensor::TensorData::new(ex.pixels.clone(), [1, 3, TILE, TILE]),
        &device,
    );
    let enc = model.encode(px, &[]);
    let [_, n, d] = enc.features.dims();
    let embeds = model.merge_embeds(&ex.prompt, data.image_token_id, Some(enc.features.reshape([n, d]))).unwrap();
    let mut cache = model.text.new_cache();
    let h = model.text.forward(embeds, &mut cache, &ForwardOptions::default()).hidden;
    model.text.logits(h).into_data().iter::<f32>().collect()
}

#[test]
fn saved_model_loads_back_through_the_normal_loader_with_identical_outputs() {
    let sizes = Sizes::tiny();
    let config = sizes.config();
    let device = Device::flex();
    let init = builtin::init_tensors(&config, 7);
    let model = Idefics3::load(&config, &builtin::serialize_f32(&init), &device).unwrap();
    let dir = std::env::temp_dir().join(format!("zoo-builtin-save-{}", std::process::id()));
    builtin::write_model_dir(&dir, &sizes, &model).unwrap();
    // every tensor is written back under its HF name, shape and values (transposes undone)
    let saved = std::fs::read(dir.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&saved).unwrap();
    assert_eq!(st.names().len(), init.len());
    for (name, shape, values) in &init {
        let t = st.tensor(name).unwrap();
        assert_eq!(t.shape(), &shape[..], "{name}");
        let got: Vec<f32> =
            t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        assert!(got == *values, "{name} differs after save");
    }
    let vlm = Vlm::load(&ModelFiles::from_dir(&dir).unwrap(), &device).unwrap();
    let data = DataSource::builtin(&sizes);
    let ex = data.example(Split::Validation, 1).unwrap();
    // the loader's own pipeline gives the same prompt and pixels as the data source
    let processed = vlm.preprocess(&builtin::scene_image(&ex.scene), None).unwrap();
    assert_eq!(processed.pixels, ex.pixels);
    assert_eq!(vlm.prompt_ids(&ex.qa.question, &processed).unwrap(), ex.prompt);
    // same f32 weights, same code: bit-identical logits (tolerance 0)
    let a = logits_of(&model, &ex, &data);
    let b = logits_of(&vlm.model, &ex, &data);
    assert_eq!(a.len(), ex.prompt.len() * builtin::vocab_size());
    assert!(a == b, "logits differ after save + load");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn training_steps_lower_the_answer_loss_through_every_part_of_the_model() {
    let sizes = Sizes::tiny();
    let config = sizes.config();
    let plain = Device::flex();
    let device = plain.clone().autodiff();
    let bytes = builtin::serialize_f32(&builtin::init_tensors(&config, 1));
    let data = DataSource::builtin(&sizes);
    let examples: Vec<Example> = (0..4).map(|i| data.example(Split::Train, i).unwrap()).collect();
    let refs: Vec<&Example> = examples.iter().collect();

    // the training graph computes the inference numbers: autodiff (burn's composed attention /
    // layer_norm under autodiff) vs the plain device's fused kernels, within 1e-4 relative
    let plain_model = Idefics3::load(&config, &bytes, &plain).unwrap();
    let l_plain: f32 = batch_loss(&plain_model, &data, &refs).unwrap().loss.into_scalar();
    let mut model = Idefics3::load(&config, &bytes, &device).unwrap();
    let first = batch_loss(&model, &data, &refs).unwrap();
    let l0: f32 = first.loss.clone().into_scalar();
    assert!((l0 - l_plain).abs() <= 1e-4 * l_plain.abs(), "autodiff {l0} vs plain {l_plain}");
    // initial loss near ln(vocab): the init is small
    let ln_v = (builtin::vocab_size() as f32).ln();
    assert!((l0 - ln_v).abs() < 0.5, "initial loss {l0}, ln V = {ln_v}");

    // gradients reach the first vision block (through attention and LayerNorm), the patch
    // embedding, the connector and the decoder
    let grads = first.loss.backward();
    let nonzero = |t: Option<Tensor<2>>, what: &str| {
        let t = t.unwrap_or_else(|| panic!("no gradient for {what}"));
        let s: f32 = t.abs().sum().into_scalar();
        assert!(s > 0.0 && s.is_finite(), "{what}: |grad| sum {s}");
    };
    nonzero(model.vision.layers[0].self_attn.q_proj.weight.grad(&grads), "vision q_proj 0");
    nonzero(model.vision.embeddings.patch_embedding.weight.grad(&grads), "patch embedding");
    nonzero(model.connector.proj.weight.grad(&grads), "connector");
    nonzero(model.text.layers[0].mlp.up_proj.weight.grad(&grads), "decoder mlp 0");
    let ln: Tensor<1> = model.vision.layers[0].layer_norm1.weight.grad(&grads).expect("layer_norm1 grad");
    assert!(ln.abs().sum().into_scalar::<f32>() > 0.0);

    let mut optim = AdamWConfig::new().init();
    let grads = GradientsParams::from_grads(grads, &model);
    model = optim.step(3e-3, model, grads);
    for _ in 0..24 {
        let out = batch_loss(&model, &data, &refs).unwrap();
        let grads = GradientsParams::from_grads(out.loss.backward(), &model);
        model = optim.step(3e-3, model, grads);
    }
    let l1: f32 = batch_loss(&model.valid(), &data, &refs).unwrap().loss.into_scalar();
    assert!(l1 < 0.5 * l0, "loss {l0} -> {l1} after 25 steps on one batch");
}

#[test]
fn grouped_questions_share_the_image_prefix_with_the_same_numbers_as_one_prompt_each() {
    // group_loss runs the image prefix once and repeats its KV cache for every question; the
    // per-question losses and logits must be those of each full prompt run on its own.
    let sizes = Sizes::tiny();
    let config = sizes.config();
    let device = Device::flex();
    let model = Idefics3::load(&config, &builtin::serialize_f32(&builtin::init_tensors(&config, 5)), &device).unwrap();
    let data = DataSource::builtin(&sizes);
    let groups: Vec<Vec<Example>> = (0..3).map(|i| data.group(Split::Train, 100 + i, 4).unwrap()).collect();
    // the first question of a group is the one `example` samples; the group is about one scene
    assert_eq!(groups[1][0].qa, data.example(Split::Train, 101).unwrap().qa);
    assert!(groups.iter().all(|g| g.iter().all(|e| e.scene == g[0].scene)));
    let refs: Vec<Vec<&Example>> = groups.iter().map(|g| g.iter().collect()).collect();
    let grouped = builtin::group_loss(&model, &data, &refs, None).unwrap();
    // The reference, independent of group_loss: the inference path (encode, merge_embeds, one
    // decoder forward over prompt + answer per question, no cache shared), its logits at the
    // positions that predict the answer, and the cross-entropy computed here in f64.
    let vocab = config.text_config.vocab_size;
    let (mut b, mut targets, mut rows, mut nll): (Vec<f32>, Vec<u32>, Vec<std::ops::Range<usize>>, f64) = (vec![], vec![], vec![], 0.0);
    for e in groups.iter().flatten() {
        let pixels = Tensor::<4>::from_data(TensorData::new(e.pixels.clone(), [1, 3, TILE, TILE]), &device);
        let features = model.encode(pixels, &[]).features;
        let [_, tokens, d] = features.dims();
        let ids: Vec<u32> = e.prompt.iter().chain(&e.answer).copied().collect();
        let embeds = model.merge_embeds(&ids, config.image_token_id, Some(features.reshape([tokens, d]))).unwrap();
        let out = model.text.forward(embeds, &mut model.text.new_cache(), &ForwardOptions::default());
        let logits: Vec<f32> = model.text.logits(out.hidden).into_data().iter::<f32>().collect();
        let start = targets.len();
        for (j, &t) in e.answer.iter().enumerate() {
            let row = &logits[(e.prompt.len() - 1 + j) * vocab..][..vocab];
            let max = row.iter().fold(f32::MIN, |m, &x| m.max(x)) as f64;
            let lse = max + row.iter().map(|&x| (x as f64 - max).exp()).sum::<f64>().ln();
            nll += lse - row[t as usize] as f64;
            b.extend_from_slice(row);
            targets.push(t);
        }
        rows.push(start..targets.len());
    }
    assert_eq!(grouped.targets, targets);
    assert_eq!(grouped.rows, rows);
    let a: Vec<f32> = grouped.logits.into_data().iter::<f32>().collect();
    // 1e-4: f32 sums over a few hundred terms in another order (cache concatenation vs one pass)
    let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(worst <= 1e-4, "grouped vs one prompt each: max |logit diff| {worst}");
    let la: f32 = grouped.loss.into_scalar();
    let (la, lb) = (la as f64, nll / targets.len() as f64);
    assert!((la - lb).abs() <= 1e-5 * lb.abs().max(1.0), "loss {la} vs {lb}");
    assert_eq!(grouped.features.dims(), [3, config.tokens_per_tile(), config.text_config.hidden_size]);

    // asking for a layer's attention probabilities (the explicit attention path, which the
    // training's attention supervision reads) changes no number, and every row is a causal
    // distribution over the prefix and the suffix so far
    let with = builtin::group_loss(&model, &data, &refs, Some(1)).unwrap();
    let c: Vec<f32> = with.logits.into_data().iter::<f32>().collect();
    let worst = a.iter().zip(&c).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(worst <= 1e-4, "explicit vs fused attention: max |logit diff| {worst}");
    let probs = with.attention_probs.expect("attention probabilities");
    let [q, h, s, l] = probs.dims();
    assert_eq!((q, h), (12, config.text_config.num_attention_heads));
    let p = l - s; // prefix length
    assert_eq!(with.image_start, 5);
    let v: Vec<f32> = probs.into_data().iter::<f32>().collect();
    for row in 0..q * h * s {
        let r = &v[row * l..(row + 1) * l];
        let i = row % s;
        assert!((r.iter().sum::<f32>() - 1.0).abs() < 1e-4);
        assert!(r[p + i + 1..].iter().all(|&x| x == 0.0), "row {row} sees a later position");
    }
}

#[test]
fn attention_targets_point_at_the_named_objects() {
    let cfg = builtin::scene_config();
    let block = 16;
    let mut n = 0;
    for i in 0..60 {
        let seed = scene_seed(Split::Train, i);
        let scene = Scene::generate(seed, &cfg);
        for qa in scene.questions(seed) {
            let words = tokenize(&qa.question);
            for (w, toks) in builtin::attention_targets(&scene, &qa, block) {
                assert!(w < words.len() && !toks.is_empty());
                // every target token is one of the objects the question is about, by its label
                let labels = builtin::token_labels(&scene, block);
                for t in &toks {
                    assert!(qa.about.iter().any(|&o| builtin::object_tokens(&scene, o, block).contains(t)));
                    assert_ne!(labels[*t][0], 0, "{}: token {t} has no object", qa.question);
                }
                n += 1;
            }
            // colour questions: the shape word points at the object, so does "?"
            if qa.kind == QaKind::ColourOfShape {
                let t = builtin::attention_targets(&scene, &qa, block);
                assert_eq!(t.len(), 2);
                assert_eq!((t[0].0, t[1].0), (words.len() - 2, words.len() - 1));
                assert_eq!(t[0].1, builtin::object_tokens(&scene, qa.about[0], block));
            }
        }
    }
    assert!(n > 1000, "{n} targets");
}

#[test]
fn token_labels_name_the_object_under_each_visual_token() {
    let cfg = builtin::scene_config();
    let block = 16; // the built-in model: 16 px patches, no pixel shuffle, on a 128 px tile
    for i in 0..50 {
        let scene = Scene::generate(scene_seed(Split::Train, i), &cfg);
        let labels = builtin::token_labels(&scene, block);
        assert_eq!(labels.len(), (TILE / block) * (TILE / block));
        for o in &scene.objects {
            // the token holding the object's centre pixel is labelled with this object (objects
            // never share a square of 16 px in a way that hides a centre: they are placed apart)
            let t = (o.cy / block) * (TILE / block) + o.cx / block;
            let c = 1 + zoo_prune_web::scenes::Colour::ALL.iter().position(|&k| k == o.colour).unwrap();
            let s = 1 + zoo_prune_web::scenes::Shape::ALL.iter().position(|&k| k == o.shape).unwrap();
            assert_eq!((labels[t][0], labels[t][1]), (c, s), "scene {i}: {o:?} at token {t}");
        }
        // every labelled token is covered by an object of that colour for at least 1/16 of it,
        // and unlabelled squares have no object pixel majority of that size
        for (t, l) in labels.iter().enumerate() {
            let (hb, wb) = (t / (TILE / block), t % (TILE / block));
            let covered = |o: &zoo_prune_web::scenes::Object| {
                (hb * block..(hb + 1) * block)
                    .flat_map(|y| (wb * block..(wb + 1) * block).map(move |x| (x, y)))
                    .filter(|&(x, y)| o.covers(x, y))
                    .count()
            };
            let best = scene.objects.iter().map(covered).max().unwrap_or(0);
            assert_eq!(l[0] != 0, best * 16 >= block * block, "scene {i} token {t}");
            assert!(l.iter().zip(builtin::LABEL_CLASSES).all(|(&v, c)| v < c));
        }
        let centres = labels.iter().filter(|l| l[3] == 1).count();
        assert!(centres >= 1 && centres <= scene.objects.len(), "scene {i}: {centres} centre tokens");
    }
}
