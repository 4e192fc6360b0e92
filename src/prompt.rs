//! The SmolVLM chat prompt with Idefics3's image-token expansion, tokenised by HF `tokenizers`
//! reading the checkpoint's tokenizer.json.

use tokenizers::Tokenizer;

use crate::error::{Error, Result};

pub const IMAGE_TOKEN: &str = "<image>";
pub const FAKE_TOKEN: &str = "<fake_token_around_image>";
pub const GLOBAL_IMG_TOKEN: &str = "<global-img>";
pub const END_OF_UTTERANCE: &str = "<end_of_utterance>";

/// `Idefics3Processor._prompt_split_image` / `_prompt_single_image`: the text that replaces one
/// `<image>` in the prompt for an image split into rows x cols tiles (0 x 0: not split).
pub fn image_prompt(rows: usize, cols: usize, image_seq_len: usize) -> String {
    let img = IMAGE_TOKEN.repeat(image_seq_len);
    if rows == 0 && cols == 0 {
        return format!("{FAKE_TOKEN}{GLOBAL_IMG_TOKEN}{img}{FAKE_TOKEN}");
    }
    let mut s = String::new();
    for r in 0..rows {
        for c in 0..cols {
            s.push_str(&format!("{FAKE_TOKEN}<row_{}_col_{}>{img}", r + 1, c + 1));
        }
        s.push('\n');
    }
    s.push_str(&format!("\n{FAKE_TOKEN}{GLOBAL_IMG_TOKEN}{img}{FAKE_TOKEN}"));
    s
}

/// SmolVLM's chat template (chat_template.json) for one user turn holding an image then a
/// question, with the generation prompt: `<|im_start|>User:<image>{question}<end_of_utterance>\nAssistant:`.
/// Returns the text before the question (image expanded) and the text after it.
pub fn chat_prompt_parts(image_text: &str) -> (String, &'static str) {
    (format!("<|im_start|>User:{image_text}"), "<end_of_utterance>\nAssistant:")
}

pub struct PromptTokenizer {
    pub tokenizer: Tokenizer,
    /// The text of every special token: a question containing one is tokenised as typed text.
    special_texts: Vec<String>,
    pub image_token_id: u32,
    pub eos_ids: Vec<u32>,
}

/// What the tokenizers crate panics on instead of returning an error (found by the fuzz bin), so
/// that a damaged tokenizer.json cannot kill the page's wasm instance:
/// - a syntax error or invalid UTF-8 inside a component (an `expect` in its decoder's
///   deserializer): the whole file is parsed as JSON first, strings validated;
/// - a BPE `continuing_subword_prefix` longer than a merge's second token, or not ending on one of
///   its character boundaries (it slices `&b[prefix.len()..]`).
fn check_tokenizer_json(bytes: &[u8]) -> Result<()> {
    let v: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::Tokenizer(format!("tokenizer.json is not valid JSON: {e}")))?;
    let model = &v["model"];
    if let Some(prefix) = model["continuing_subword_prefix"].as_str().filter(|p| !p.is_empty()) {
        for m in model["merges"].as_array().into_iter().flatten() {
            let second = match m {
                serde_json::Value::String(s) => s.split_once(' ').map(|(_, b)| b),
                serde_json::Value::Array(a) => a.get(1).and_then(|b| b.as_str()),
                _ => None,
            };
            if let Some(b) = second {
                if !b.is_char_boundary(prefix.len()) {
                    return Err(Error::Tokenizer(format!(
                        "tokenizer.json: the merge {m} does not start with the model's \
                         continuing_subword_prefix {prefix:?} (a damaged file?)"
                    )));
                }
            }
        }
    }
    Ok(())
}

impl PromptTokenizer {
    pub fn from_bytes(bytes: &[u8], image_token_id: u32, extra_eos: &[u32]) -> Result<Self> {
        check_tokenizer_json(bytes)?;
        let tokenizer = Tokenizer::from_bytes(bytes)
            .map_err(|e| Error::Tokenizer(format!("tokenizer.json cannot be read: {e}")))?;
        for tok in [IMAGE_TOKEN, FAKE_TOKEN, GLOBAL_IMG_TOKEN] {
            if tokenizer.token_to_id(tok).is_none() {
                return Err(Error::Tokenizer(format!(
                    "tokenizer.json has no `{tok}` token: not a SmolVLM/Idefics3 tokenizer"
                )));
            }
        }
        let id = tokenizer.token_to_id(IMAGE_TOKEN).unwrap();
        if id != image_token_id {
            return Err(Error::Tokenizer(format!(
                "tokenizer's <image> id {id} differs from config image_token_id {image_token_id}"
            )));
        }
        let mut eos_ids: Vec<u32> = extra_eos.to_vec();
        if let Some(e) = tokenizer.token_to_id(END_OF_UTTERANCE) {
            if !eos_ids.contains(&e) {
                eos_ids.push(e);
            }
        }
        let special_texts =
            tokenizer.get_added_tokens_decoder().into_values().filter(|t| t.special).map(|t| t.content).collect();
        Ok(Self { tokenizer, special_texts, image_token_id, eos_ids })
    }

    /// Token ids of `text`, special tokens written in it recognised (e.g. an answer in training).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        encode_with(&self.tokenizer, text)
    }

    /// The question's own ids (outer whitespace trimmed), as typed text: `<image>` or
    /// `<end_of_utterance>` written in a question are characters, not control tokens (HF's
    /// `split_special_tokens=True`). Without such text this is the plain encoding; with it, a copy of
    /// the tokenizer that splits special tokens is made for this call (rare; a permanent copy would
    /// hold a second 49k-token vocabulary in the browser's memory).
    pub fn question_ids(&self, question: &str) -> Result<Vec<u32>> {
        let q = question.trim();
        if self.special_texts.iter().any(|s| q.contains(s.as_str())) {
            let mut literal = self.tokenizer.clone();
            literal.set_encode_special_tokens(true);
            encode_with(&literal, q)
        } else {
            encode_with(&self.tokenizer, q)
        }
    }

    /// Token ids of the full prompt for `question` about an image of rows x cols tiles.
    ///
    /// The template's pieces and the question are tokenised apart and joined: special tokens split
    /// the text before the pre-tokenizer runs, so this equals tokenising the whole prompt at once
    /// (checked against Idefics3Processor on SmolVLM's real files), except that special tokens
    /// typed in the question stay text. HF's processor refuses a question containing `<image>` (it
    /// counts two images for one); here it is tokenised as the characters it is. The pieces get
    /// no post-processor tokens (SmolVLM's tokenizer.json has no post-processor).
    pub fn prompt_ids(&self, question: &str, rows: usize, cols: usize, image_seq_len: usize) -> Result<Vec<u32>> {
        if question.trim().is_empty() {
            return Err(Error::Prompt("the question is empty: type a question about the image".into()));
        }
        let (head, tail) = chat_prompt_parts(&image_prompt(rows, cols, image_seq_len));
        let mut ids = encode_with(&self.tokenizer, &head)?;
        ids.extend(self.question_ids(question)?);
        ids.extend(encode_with(&self.tokenizer, tail)?);
        Ok(ids)
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer
            .decode(ids, true)
            .map_err(|e| Error::Tokenizer(format!("cannot decode tokens: {e}")))
    }
}

fn encode_with(tok: &Tokenizer, text: &str) -> Result<Vec<u32>> {
    let enc = tok
        .encode(text, false)
        .map_err(|e| Error::Tokenizer(format!("cannot tokenise the prompt: {e}")))?;
    Ok(enc.get_ids().to_vec())
}

/// Turns a growing list of token ids into text pieces, so a stream shows words as they come
/// (a byte-level BPE may need several tokens for one character).
#[derive(Default)]
pub struct TextStream {
    ids: Vec<u32>,
    emitted: String,
}

impl TextStream {
    pub fn push(&mut self, tok: &PromptTokenizer, id: u32) -> Result<String> {
        self.ids.push(id);
        let text = tok.decode(&self.ids)?;
        if text.ends_with('\u{FFFD}') {
            return Ok(String::new());
        }
        let piece = text.get(self.emitted.len()..).unwrap_or("").to_string();
        if text.starts_with(&self.emitted) {
            self.emitted = text;
            Ok(piece)
        } else {
            self.emitted = text;
            Ok(String::new())
        }
    }

    pub fn text(&self) -> &str {
        &self.emitted
    }
}
