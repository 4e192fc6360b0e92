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

/// SmolVLM's chat template for one user turn holding an image then a question, with the generation
/// prompt: `<|im_start|>User:<image>{question}<end_of_utterance>\nAssistant:`.
pub fn chat_prompt(question: &str, image_text: &str) -> String {
    format!("<|im_start|>User:{image_text}{question}{END_OF_UTTERANCE}\nAssistant:")
}

pub struct PromptTokenizer {
    pub tokenizer: Tokenizer,
    pub image_token_id: u32,
    pub eos_ids: Vec<u32>,
}

impl PromptTokenizer {
    pub fn from_bytes(bytes: &[u8], image_token_id: u32, extra_eos: &[u32]) -> Result<Self> {
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
        Ok(Self { tokenizer, image_token_id, eos_ids })
    }

    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| Error::Tokenizer(format!("cannot tokenise the prompt: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Token ids of the full prompt for `question` about an image of rows x cols tiles.
    pub fn prompt_ids(&self, question: &str, rows: usize, cols: usize, image_seq_len: usize) -> Result<Vec<u32>> {
        let q = question.trim();
        if q.is_empty() {
            return Err(Error::Prompt("the question is empty: type a question about the image".into()));
        }
        self.encode(&chat_prompt(q, &image_prompt(rows, cols, image_seq_len)))
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer
            .decode(ids, true)
            .map_err(|e| Error::Tokenizer(format!("cannot decode tokens: {e}")))
    }
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
