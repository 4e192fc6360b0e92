//! The shipped built-in model (assets/builtin-model, trained by `src/bin/train.rs`): it loads
//! through the very loader SmolVLM uses, answers held-out scenes, meets the accuracy bar on the
//! test split, and loses the answer when the tokens of the asked-about object are pruned.

use burn::tensor::Device;
use zoo_prune_web::builtin::{self, scene_image, DataSource, Sizes};
use zoo_prune_web::evaluate::encode_for_pruning;
use zoo_prune_web::prune::Positions;
use zoo_prune_web::scenes::{scene_seed, QaKind, Scene, Split};
use zoo_prune_web::{ModelFiles, Vlm};

const DIR: &str = "assets/builtin-model";

fn load() -> (Vlm, DataSource) {
    let files = ModelFiles::from_dir(std::path::Path::new(DIR)).expect("the shipped model folder");
    let vlm = Vlm::load(&files, &Device::flex()).expect("loads through Vlm::load");
    let data = DataSource::new(&vlm.config, &files.tokenizer, files.preprocessor.as_deref().expect("preprocessor_config.json"))
        .expect("data source from the folder's own files");
    (vlm, data)
}

fn ask(vlm: &Vlm, scene: &Scene, question: &str) -> String {
    let enc = encode_for_pruning(vlm, &scene_image(scene)).unwrap();
    let ids = vlm.prompt_ids(question, &enc.processed).unwrap();
    vlm.answer_all(&ids, &enc, 4).unwrap()
}

#[test]
fn the_shipped_folder_is_the_builtin_layout_and_loads_with_the_smolvlm_loader() {
    let files = ModelFiles::from_dir(std::path::Path::new(DIR)).unwrap();
    // the folder's files are what the code that trained it writes
    assert_eq!(String::from_utf8(files.config.clone()).unwrap(), Sizes::builtin().config_json());
    assert_eq!(String::from_utf8(files.tokenizer.clone()).unwrap(), builtin::tokenizer_json());
    assert_eq!(String::from_utf8(files.preprocessor.clone().unwrap()).unwrap(), builtin::preprocessor_json());
    assert!(files.safetensors.len() <= 20_000_000, "{} bytes of weights", files.safetensors.len());
    let st = safetensors::SafeTensors::deserialize(&files.safetensors).unwrap();
    let c = Sizes::builtin().config();
    assert_eq!(st.names().len(), builtin::init_tensors(&c, 0).len());
    let (vlm, _) = load();
    assert_eq!(vlm.image_seq_len(), 64);
    assert_eq!(vlm.config.text_config.vocab_size, builtin::vocab_size());
}

/// Held-out test scenes (never trained on: the training bin only draws the train split) with the
/// generator's question and answer written out, so a change to the generator shows up here too.
#[test]
fn the_shipped_model_answers_fixed_held_out_scenes_exactly() {
    let (vlm, data) = load();
    let cases: &[(u64, &str, &str)] = &[
        (0, "what colour is the large square?", "yellow"),
        (1, "what shape is the green object?", "square"),
        (2, "how many purple objects are there?", "one"),
        (3, "is there a black circle?", "yes"),
    ];
    for &(index, question, answer) in cases {
        let scene = Scene::generate(scene_seed(Split::Test, index), &data.scenes);
        assert!(
            scene.questions(scene.seed).iter().any(|q| q.question == question && q.answer == answer),
            "test scene {index}: the generator no longer asks {question:?} -> {answer:?}"
        );
        assert_eq!(ask(&vlm, &scene, question), answer, "test scene {index}: {question}");
    }
}

/// The bar: at least 95 % exact match with every visual token on the test split. 1000
/// scenes, one sampled question each (the protocol of `evaluate`; README: 96.6 %). On the first
/// 300 the model scores exactly 95.0 %, so one answer flipped by a different summation order
/// would fail a 300-scene bar; over 1000 the margin is 16 answers.
#[test]
fn the_shipped_model_meets_the_accuracy_bar_on_the_test_split() {
    let (vlm, data) = load();
    let n = 1000;
    let mut right = 0;
    let mut wrong = Vec::new();
    for i in 0..n {
        let ex = data.example(Split::Test, i).unwrap();
        let got = ask(&vlm, &ex.scene, &ex.qa.question);
        if got == ex.qa.answer {
            right += 1;
        } else {
            wrong.push(format!("{i}: {} -> {got} (true {})", ex.qa.question, ex.qa.answer));
        }
    }
    let acc = right as f64 / n as f64;
    eprintln!("test split: {right}/{n} = {:.1} %; wrong: {wrong:#?}", 100.0 * acc);
    assert!(acc >= 0.95, "{right}/{n} correct; wrong: {wrong:#?}");
}

/// Pruning the visual tokens that cover the asked-about object loses the answer; pruning as many
/// tokens that cover no object keeps it far more often. Colour questions ("what colour is the
/// circle?") on the first 40 test scenes that have one and are answered right with every token.
#[test]
fn pruning_the_tokens_of_the_asked_about_object_changes_the_answer() {
    let (vlm, data) = load();
    let block = vlm.config.vision_config.patch_size * vlm.config.scale_factor;
    let (mut cases, mut changed, mut kept_right) = (0, 0, 0);
    let mut first: Option<(u64, String, String, String)> = None;
    for index in 0..200u64 {
        let seed = scene_seed(Split::Test, index);
        let scene = Scene::generate(seed, &data.scenes);
        let Some(qa) = scene.sample_qa_of_kind(QaKind::ColourOfShape, seed) else { continue };
        let enc = encode_for_pruning(&vlm, &scene_image(&scene)).unwrap();
        let ids = vlm.prompt_ids(&qa.question, &enc.processed).unwrap();
        if vlm.answer_all(&ids, &enc, 4).unwrap() != qa.answer {
            continue;
        }
        let n = enc.features().dims()[0];
        // the tokens whose square meets the object's box
        let object = &scene.objects[qa.about[0]];
        let covered = object.patches_covered(block, scene.width);
        let without_object: Vec<usize> = (0..n).filter(|t| !covered.contains(t)).collect();
        // as many tokens with no object pixel at all, pruned instead
        let labels = builtin::token_labels(&scene, block);
        let empty: Vec<usize> = (0..n)
            .filter(|&t| {
                let (y0, x0) = ((t / (scene.width / block)) * block, (t % (scene.width / block)) * block);
                labels[t][0] == 0
                    && !(y0..y0 + block).any(|y| (x0..x0 + block).any(|x| scene.objects.iter().any(|o| o.covers(x, y))))
            })
            .collect();
        if empty.len() < covered.len() {
            continue;
        }
        let control: Vec<usize> = (0..n).filter(|t| !empty[..covered.len()].contains(t)).collect();
        let a = vlm.answer_kept(&ids, &enc, &without_object, None, Positions::Renumber, 4).unwrap();
        let b = vlm.answer_kept(&ids, &enc, &control, None, Positions::Renumber, 4).unwrap();
        cases += 1;
        changed += (a != qa.answer) as usize;
        kept_right += (b == qa.answer) as usize;
        if first.is_none() && a != qa.answer {
            first = Some((index, qa.question.clone(), qa.answer.clone(), a.clone()));
        }
        if cases == 40 {
            break;
        }
    }
    eprintln!("{cases} scenes: object pruned -> answer changed {changed}; other tokens pruned -> still right {kept_right}; first: {first:?}");
    assert_eq!(cases, 40);
    // Measured with the shipped model: 28 of 40 changed, 40 of 40 controls still right. Not every
    // answer is lost with the object's tokens: the encoder's attention spreads some of an object
    // into its neighbours' tokens, and another object may share the colour.
    assert!(changed * 10 >= cases * 6, "the answer changed in only {changed} of {cases} scenes");
    assert!(kept_right * 10 >= cases * 9, "pruning empty tokens broke {} of {cases} answers", cases - kept_right);
    // the first one is the page's first scene (the large yellow square, its tokens pruned): what
    // the wrong answer is depends on the trained weights, only that it is wrong is asserted
    let (index, question, truth, answer) = first.expect("a changed answer");
    assert_eq!((index, question.as_str(), truth.as_str()), (0, "what colour is the large square?", "yellow"));
    assert_ne!(answer, truth);
}
