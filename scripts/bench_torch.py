#!/usr/bin/env python3
"""The PyTorch side of `bench stages` (src/bin/bench.rs): HF transformers' Idefics3 on the same
checkpoint, timing the same stages the same way. Prints one JSON object on stdout.

    python scripts/bench_torch.py --model DIR [--threads N] [--runs N] [--device cpu|cuda]

Stages (each the median of --runs runs after one warm-up; CUDA work is synchronised inside the timer):
  encode      vision_model on one tile [1, 3, S, S] (embeddings, encoder, post_layernorm)
  connector   pixel shuffle + Linear on one tile's states
  matmul      the encoder's fc1 product alone: [1, patches, d] @ [d, intermediate]
  attention   the encoder's attention alone: SDPA over one tile's patches, every head
  zoo         ZOO-Prune sensitivity of every visual token of --tiles tiles, m 64: the closed-form
              LayerNorm Jacobian-vector product that zoo-prune-web uses (src/prune/zoo.rs ln_jvp),
              one tile at a time, written in torch
  prefill     text model over [1, L, d] embeddings (L = kept visual tokens + --text-tokens), lm_head
              on the last position, argmax, read back: the time to the first token
  decode      greedy tokens with the KV cache after each prefill, per token, token read back each
              step (as a streaming UI must)
  peak_rss    VmHWM of this process (includes Python and torch themselves)
"""
import argparse
import json
import math
import os
import statistics
import sys
import time


def median_ms(runs, f, sync):
    f()
    sync()
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        sync()
        out.append((time.perf_counter() - t) * 1e3)
    return statistics.median(out)


def vm_hwm_mb():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--tiles", type=int, default=17)
    ap.add_argument("--text-tokens", type=int, default=24)
    ap.add_argument("--decode-tokens", type=int, default=32)
    ap.add_argument("--ratios", default="1.0,0.5,0.25,0.1")
    a = ap.parse_args()

    import torch
    import transformers
    from transformers import Idefics3ForConditionalGeneration

    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    t0 = time.perf_counter()
    model = Idefics3ForConditionalGeneration.from_pretrained(a.model, dtype=torch.float32).to(dev).eval()
    load_s = time.perf_counter() - t0
    cfg = model.config
    vc, tc = cfg.vision_config, cfg.text_config
    s = cfg.scale_factor
    side = vc.image_size // vc.patch_size
    per_tile = (side // s) ** 2
    n_vis = a.tiles * per_tile
    vision = model.model.vision_model
    connector = model.model.connector
    text = model.model.text_model
    head = model.lm_head
    res = {
        "name": f"PyTorch {torch.__version__} {dev.type}",
        "threads": torch.get_num_threads(),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "attn_implementation": getattr(cfg, "_attn_implementation", None),
        "load_s": load_s,
        "tiles": a.tiles,
        "tokens_per_tile": per_tile,
        "text_tokens": a.text_tokens,
        "decode_tokens": a.decode_tokens,
    }
    g = torch.Generator(device="cpu").manual_seed(0)
    with torch.inference_mode():
        px = (torch.rand(1, 3, vc.image_size, vc.image_size, generator=g) * 2 - 1).to(dev)
        mask = torch.ones(1, side, side, dtype=torch.bool, device=dev)
        res["encode_ms"] = median_ms(
            a.runs, lambda: vision(pixel_values=px, patch_attention_mask=mask).last_hidden_state, sync)
        feats = vision(pixel_values=px, patch_attention_mask=mask).last_hidden_state
        res["connector_ms"] = median_ms(a.runs, lambda: connector(feats), sync)

        # two kernels of the encoder, alone: fc1's matmul [patches, d] x [d, 4d] and attention over
        # one tile's patches (every head), to tell where an encode's time goes
        n_p, d_v, heads = side * side, vc.hidden_size, vc.num_attention_heads
        xm = torch.randn(1, n_p, d_v, generator=g).to(dev)
        wm = torch.randn(d_v, vc.intermediate_size, generator=g).to(dev)
        res["matmul_ms"] = median_ms(a.runs, lambda: xm @ wm, sync)
        qkv = [torch.randn(1, heads, n_p, d_v // heads, generator=g).to(dev) for _ in range(3)]
        res["attention_ms"] = median_ms(a.runs, lambda: torch.nn.functional.scaled_dot_product_attention(*qkv), sync)

        # ZOO: the closed-form JVP of post_layernorm + connector Linear, per tile (as zoo.rs)
        pre_ln = torch.randn(a.tiles, side * side, vc.hidden_size, generator=g).to(dev)
        m = 64
        s2, dv = s * s, vc.hidden_size
        u = torch.randn(m, s2, dv, generator=g).to(dev)
        u = u / u.flatten(1).norm(dim=1).view(m, 1, 1)
        ln = vision.post_layernorm
        w = connector.modality_projection.proj.weight.t()  # [s2*dv, dt]
        dt = w.shape[1]

        def shuffle(x):  # [1, patches, dv] -> [n, s2, dv], HF's pixel_shuffle order
            return connector.pixel_shuffle(x, s).reshape(-1, s2, dv)

        def zoo():
            gm = w.reshape(s2, dv, dt) * ln.weight.view(1, dv, 1)
            uq = u.transpose(0, 1)
            pq = (uq - uq.mean(2, keepdim=True)) @ gm  # [s2, m, dt]
            outs = []
            for i in range(a.tiles):
                x = shuffle(pre_ln[i:i + 1])
                n = x.shape[0]
                c = x - x.mean(2, keepdim=True)
                inv = torch.rsqrt(c.square().mean(2, keepdim=True) + ln.eps)
                xq = (c * inv).transpose(0, 1)  # [s2, n, dv]
                bq = xq @ gm  # [s2, n, dt]
                cq = xq @ uq.transpose(1, 2) / dv  # [s2, n, m]
                alpha = inv.reshape(n, s2)
                first = (alpha @ pq.reshape(s2, m * dt)).reshape(n, m, dt)
                beta = cq.transpose(0, 1) * alpha.reshape(n, s2, 1)
                second = beta.transpose(1, 2) @ bq.transpose(0, 1)
                outs.append((first - second).square().sum(2).sqrt().mean(1))
            return torch.cat(outs).cpu()

        res["zoo_ms"] = median_ms(a.runs, zoo, sync)

        # prefill and decode on random embeddings of the prompt's length
        ratios = [float(r) for r in a.ratios.split(",")]
        res["prefill_ms"], res["decode_tok_s"], res["prompt_tokens"] = {}, {}, {}
        for r in ratios:
            k = round(n_vis * r)
            L = k + a.text_tokens
            emb = torch.randn(1, L, tc.hidden_size, generator=g).to(dev) * 0.02
            state = {}

            def prefill():
                out = text(inputs_embeds=emb, use_cache=True)
                tok = head(out.last_hidden_state[:, -1:]).argmax(-1)
                state["pkv"], state["tok"] = out.past_key_values, int(tok.item())

            res["prefill_ms"][str(r)] = median_ms(a.runs, prefill, sync)
            res["prompt_tokens"][str(r)] = L

            def decode():
                prefill()
                pkv, tok = state["pkv"], state["tok"]
                t = time.perf_counter()
                for _ in range(a.decode_tokens):
                    e = text.embed_tokens(torch.tensor([[tok]], device=dev))
                    out = text(inputs_embeds=e, past_key_values=pkv, use_cache=True)
                    pkv = out.past_key_values
                    tok = int(head(out.last_hidden_state).argmax(-1).item())
                return time.perf_counter() - t

            decode()
            res["decode_tok_s"][str(r)] = statistics.median(a.decode_tokens / decode() for _ in range(a.runs))
    res["peak_rss_mb"] = vm_hwm_mb()
    if dev.type == "cuda":
        res["peak_device_mb"] = torch.cuda.max_memory_allocated() / 2**20
    json.dump(res, sys.stdout)
    print()


if __name__ == "__main__":
    main()
