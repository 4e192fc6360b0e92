//! Held-out scenes written as files for the page: its sample row and its Evaluate panel.

use super::*;

/// Held-out scenes for the page's sample row: for each question kind in [`QaKind::ALL`] order, the
/// next test scene (from index 0 on) that has a question of that kind, with that question. Writes
/// `scene-test-NNNN.png` files and `scenes.json` ([{file, question, answer, kind, index}]) to `dir`.
pub fn write_scene_samples(data: &DataSource, dir: &std::path::Path) -> Result<serde_json::Value> {
    use crate::scenes::{scene_seed, QaKind, Scene};
    let io = |e: std::io::Error| crate::Error::Other(format!("cannot write to {}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut out = Vec::new();
    let mut index = 0u64;
    for kind in QaKind::ALL {
        let (scene, qa) = loop {
            let seed = scene_seed(Split::Test, index);
            let scene = Scene::generate(seed, &data.scenes);
            index += 1;
            if let Some(qa) = scene.sample_qa_of_kind(kind, seed) {
                break (scene, qa);
            }
        };
        let file = format!("scene-test-{:04}.png", index - 1);
        let png = crate::overlay::png_rgb(&scene.pixels, scene.width, scene.height)?;
        std::fs::write(dir.join(&file), png).map_err(io)?;
        out.push(serde_json::json!({
            "file": file,
            "question": qa.question,
            "answer": qa.answer,
            "kind": kind.name(),
            "index": index - 1,
        }));
    }
    let json = serde_json::Value::Array(out);
    std::fs::write(dir.join("scenes.json"), serde_json::to_string_pretty(&json).unwrap()).map_err(io)?;
    Ok(json)
}

/// The first `n` scenes of the test split with the question `evaluate` asks of each (the same as
/// its run on `--n n` or more scenes): `scene-test-NNNN.png` files (the same bytes as
/// [`write_scene_samples`]' for a scene both write) and `eval.json`
/// ({split, scenes: [{file, question, answer, kind, index}]}) in `dir`. The page's Evaluate panel
/// runs on them.
pub fn write_eval_scenes(data: &DataSource, n: usize, dir: &std::path::Path) -> Result<serde_json::Value> {
    let io = |e: std::io::Error| crate::Error::Other(format!("cannot write to {}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut scenes = Vec::with_capacity(n);
    for i in 0..n {
        let ex = data.example(Split::Test, i as u64)?;
        let file = format!("scene-test-{i:04}.png");
        let png = crate::overlay::png_rgb(&ex.scene.pixels, ex.scene.width, ex.scene.height)?;
        std::fs::write(dir.join(&file), png).map_err(io)?;
        scenes.push(serde_json::json!({
            "file": file,
            "question": ex.qa.question,
            "answer": ex.qa.answer,
            "kind": ex.qa.kind.name(),
            "index": i,
        }));
    }
    let json = serde_json::json!({
        "split": "test",
        "written_by": format!("evaluate --eval-scenes DIR --n {n}"),
        "scenes": scenes,
    });
    std::fs::write(dir.join("eval.json"), serde_json::to_string_pretty(&json).unwrap()).map_err(io)?;
    Ok(json)
}
