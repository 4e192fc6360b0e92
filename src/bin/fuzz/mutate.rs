//! Random choices and the mutations: bytes, JSON trees, and structure-aware ones (safetensors
//! headers, PNG chunks), plus random question text.

use super::*;

// ---- random choices

pub(crate) struct Rng(pub(crate) SplitMix64);

impl Rng {
    pub(crate) fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            self.0.below(n as u64) as usize
        }
    }
    pub(crate) fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
    pub(crate) fn byte(&mut self) -> u8 {
        self.0.next_u64() as u8
    }
    pub(crate) fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

// ---- byte mutations

pub(crate) const INTERESTING_U32: &[u32] =
    &[0, 1, 2, 3, 7, 8, 15, 16, 255, 256, 4095, 65535, 65536, 40000, 1 << 24, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff];

pub(crate) fn mutate_bytes(rng: &mut Rng, b: &mut Vec<u8>) {
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        let n = b.len();
        match rng.below(9) {
            0 if n > 0 => {
                let i = rng.below(n);
                b[i] ^= 1 << rng.below(8);
            }
            1 if n > 0 => {
                let i = rng.below(n);
                b[i] = rng.byte();
            }
            2 if n > 0 => b.truncate(rng.below(n)),
            3 => {
                let i = rng.below(n + 1);
                let k = 1 + rng.below(16);
                let ins: Vec<u8> = (0..k).map(|_| rng.byte()).collect();
                b.splice(i..i, ins);
            }
            4 if n > 1 => {
                let i = rng.below(n);
                let k = 1 + rng.below((n - i).min(64));
                b.drain(i..i + k);
            }
            5 if n > 4 => {
                let i = rng.below(n - 3);
                let v = *rng.pick(INTERESTING_U32);
                let bytes = if rng.chance(2) { v.to_be_bytes() } else { v.to_le_bytes() };
                b[i..i + 4].copy_from_slice(&bytes);
            }
            6 if n > 8 => {
                // copy a chunk elsewhere (repeated structures: chunks, markers)
                let i = rng.below(n);
                let k = 1 + rng.below((n - i).min(256));
                let chunk = b[i..i + k].to_vec();
                let j = rng.below(n + 1);
                b.splice(j..j, chunk);
            }
            7 if n > 0 => {
                let i = rng.below(n);
                b[i] = *rng.pick(&[0u8, 0x7f, 0x80, 0xff, b'{', b'"', b'[', b'0', b'9', b'-', b'e', b'.']);
            }
            _ if n > 0 => {
                let i = rng.below(n);
                b[i] = b[i].wrapping_add(1 + rng.below(3) as u8);
            }
            _ => b.push(rng.byte()),
        }
    }
}

// ---- JSON tree mutations

pub(crate) fn interesting_json(rng: &mut Rng) -> Value {
    match rng.below(22) {
        0 => json!(0),
        1 => json!(1),
        2 => json!(-1),
        3 => json!(2),
        4 => json!(3),
        5 => json!(65536),
        6 => json!(4_294_967_296u64),
        7 => json!(u64::MAX),
        8 => json!(i64::MIN),
        9 => json!(1e308),
        10 => json!(-1e308),
        11 => json!(1e-300),
        12 => json!(0.5),
        13 => json!(-0.0),
        14 => json!(""),
        15 => json!("x".repeat(1 + rng.below(3000))),
        16 => Value::Null,
        17 => json!(true),
        18 => json!([]),
        19 => json!({}),
        20 => json!([1, 2, 3]),
        _ => json!("\u{0}<image>\u{fffd}é"),
    }
}

pub(crate) fn count_nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count_nodes).sum(),
        Value::Object(o) => o.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// Applies `f` to the `i`-th node in pre-order (0 = the root); false when there are fewer nodes.
pub(crate) fn with_nth_node(v: &mut Value, i: &mut usize, f: &mut dyn FnMut(&mut Value)) -> bool {
    if *i == 0 {
        f(v);
        return true;
    }
    *i -= 1;
    match v {
        Value::Array(a) => a.iter_mut().any(|c| with_nth_node(c, i, f)),
        Value::Object(o) => o.values_mut().any(|c| with_nth_node(c, i, f)),
        _ => false,
    }
}

pub(crate) fn mutate_node(rng: &mut Rng, node: &mut Value) {
    match node {
        Value::Number(n) if rng.chance(2) => {
            let f = n.as_f64().unwrap_or(0.0);
            *node = match rng.below(6) {
                0 => json!(f + 1.0),
                1 => json!((f - 1.0).round() as i64),
                2 => json!(f * 2f64.powi(rng.below(40) as i32)),
                3 => json!(-f),
                4 => json!(f / 3.0),
                _ => json!(n.as_u64().map(|u| u.wrapping_mul(1 << rng.below(20))).unwrap_or(7)),
            };
        }
        Value::String(s) if rng.chance(2) => {
            match rng.below(4) {
                0 => s.clear(),
                1 => s.push_str(&s.clone()),
                2 => {
                    let cut = s.char_indices().nth(rng.below(s.chars().count().max(1))).map_or(0, |(i, _)| i);
                    s.truncate(cut)
                }
                _ => s.insert(0, *rng.pick(&['\u{0}', 'Ġ', '<', '\u{10ffff}', ' ', '\\'])),
            };
        }
        Value::Array(a) if !a.is_empty() && rng.chance(2) => {
            match rng.below(3) {
                0 => {
                    a.remove(rng.below(a.len()));
                }
                1 => {
                    let c = a[rng.below(a.len())].clone();
                    a.insert(rng.below(a.len() + 1), c);
                }
                _ => a.reverse(),
            };
        }
        Value::Object(o) if !o.is_empty() && rng.chance(2) => {
            let keys: Vec<String> = o.keys().cloned().collect();
            let k = rng.pick(&keys).clone();
            if rng.chance(2) {
                o.remove(&k);
            } else {
                let v = o.remove(&k).unwrap();
                o.insert(format!("{k}_"), v);
            }
        }
        _ => *node = interesting_json(rng),
    }
}

pub(crate) fn mutate_json(rng: &mut Rng, v: &mut Value) {
    let rounds = 1 + rng.below(3);
    for _ in 0..rounds {
        let n = count_nodes(v);
        let mut i = rng.below(n);
        with_nth_node(v, &mut i, &mut |node| mutate_node(rng, node));
    }
}

/// A mutated JSON document: tree mutations, then (one case in four) byte mutations of its text.
pub(crate) fn mutated_json_bytes(rng: &mut Rng, base: &Value) -> Vec<u8> {
    let mut v = base.clone();
    if !rng.chance(4) {
        mutate_json(rng, &mut v);
    }
    let mut b = serde_json::to_vec_pretty(&v).unwrap();
    if rng.chance(4) {
        mutate_bytes(rng, &mut b);
    }
    b
}

// ---- structure-aware mutations

pub(crate) const DTYPES: &[&str] = &["F32", "BF16", "F16", "F64", "I8", "U8", "I16", "I32", "I64", "BOOL", "F8_E4M3", "F8_E5M2", "F4", "C64"];

pub(crate) fn mutate_safetensors(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let n = u64::from_le_bytes(base[..8].try_into().unwrap()) as usize;
    let mut header: Value = serde_json::from_slice(&base[8..8 + n]).unwrap();
    let data = &base[8 + n..];
    match rng.below(6) {
        0 => mutate_bytes(rng, &mut base.to_vec()),
        1 | 2 => {
            // one tensor entry: its dtype, shape or offsets
            let names: Vec<String> = header.as_object().unwrap().keys().filter(|k| *k != "__metadata__").cloned().collect();
            let name = rng.pick(&names).clone();
            let e = &mut header[&name];
            match rng.below(4) {
                0 => e["dtype"] = json!(rng.pick(DTYPES)),
                1 => mutate_json(rng, &mut e["shape"]),
                2 => mutate_json(rng, &mut e["data_offsets"]),
                _ => mutate_json(rng, e),
            }
        }
        3 => mutate_json(rng, &mut header),
        _ => {}
    }
    let h = serde_json::to_vec(&header).unwrap();
    let mut out = Vec::with_capacity(8 + h.len() + data.len());
    let mut len = h.len() as u64;
    if rng.chance(16) {
        len = *rng.pick(&[0u64, 1, 7, len - 1, len + 1, len * 2, u64::MAX, 1 << 40]);
    }
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    match rng.below(5) {
        // NaN / Inf / huge weights in the data: loads fine, must not break ranking or decoding
        0 | 1 if data.len() > 2 => {
            let start = 8 + h.len();
            for _ in 0..1 + rng.below(64) {
                let i = start + rng.below(data.len() - 1);
                let v: [u8; 2] = *rng.pick(&[[0xc0, 0x7f], [0x80, 0x7f], [0x80, 0xff], [0x7f, 0x7f], [0, 0]]);
                out[i..i + 2].copy_from_slice(&v);
            }
        }
        2 => mutate_bytes(rng, &mut out),
        _ => {}
    }
    out
}

/// PNG: a changed IHDR (size, bit depth, colour type) with its CRC fixed, so that the decoder reads
/// on instead of stopping at the checksum; else byte mutations.
pub(crate) fn mutate_png(rng: &mut Rng, b: &mut Vec<u8>) {
    if b.len() > 33 && &b[12..16] == b"IHDR" && rng.chance(2) {
        match rng.below(4) {
            0 => b[16..20].copy_from_slice(&rng.pick(INTERESTING_U32).to_be_bytes()),
            1 => b[20..24].copy_from_slice(&rng.pick(INTERESTING_U32).to_be_bytes()),
            2 => b[24] = *rng.pick(&[0u8, 1, 2, 4, 8, 16, 32]),
            _ => b[25] = *rng.pick(&[0u8, 2, 3, 4, 6, 7]),
        }
        let crc = crc32fast::hash(&b[12..29]);
        b[29..33].copy_from_slice(&crc.to_be_bytes());
        if rng.chance(2) {
            return;
        }
    }
    mutate_bytes(rng, b);
}

pub(crate) fn random_question(rng: &mut Rng) -> String {
    const PIECES: &[&str] = &[
        "What colour is the cat?", "<image>", "<fake_token_around_image>", "<global-img>", "<row_1_col_1>",
        "<|im_start|>", "<|im_end|>", "<end_of_utterance>", "Assistant:", "User:", "\n", "\r\n", "\t", " ", "\u{0}",
        "\u{200b}", "\u{feff}", "é", "e\u{301}", "🐈", "日本", "\u{10ffff}", "\u{fffd}", "<", ">", "Ġ", "?", "",
    ];
    let mut s = String::new();
    for _ in 0..rng.below(12) {
        if rng.chance(5) {
            let c = char::from_u32(rng.0.next_u64() as u32 % 0x11_0000).unwrap_or('x');
            s.push(c);
        } else {
            s.push_str(PIECES[rng.below(PIECES.len())]);
        }
    }
    if rng.chance(50) {
        s = s.repeat(1 + rng.below(2000));
    }
    s
}
