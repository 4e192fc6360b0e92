#!/usr/bin/env python3
"""The browser peer's model (scripts/bench-web.mjs --peer): the vision encoder + connector of an
Idefics3 / SmolVLM checkpoint, exported from HF transformers with torch.onnx, f32, one tile.

    python scripts/export_onnx.py --model DIR --out FILE.onnx

Input `pixel_values` [1, 3, S, S] (S = vision_config.image_size), output `features`
[1, tokens_per_tile, text hidden size]: what the page's encode computes per tile (embeddings,
encoder, post_layernorm, pixel shuffle, connector projection). Checks the exported graph against
transformers on one random tile with onnxruntime when that is installed (prints the max |diff|).
Needs the torch venv of scripts/torch-venv.sh; never CI.
"""
import argparse
import os
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    import torch
    from transformers import Idefics3ForConditionalGeneration

    model = Idefics3ForConditionalGeneration.from_pretrained(a.model, dtype=torch.float32).eval()
    vc = model.config.vision_config
    side = vc.image_size // vc.patch_size

    class Tile(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.vision = m.model.vision_model
            self.connector = m.model.connector

        def forward(self, pixel_values):
            # a full tile's position ids are 0..patches-1: HF's bucketize of them traces into a
            # Gather on float indices that onnxruntime refuses (transformers 5.23, torch 2.15), so
            # the embeddings are written out here; the check below compares with HF's own path
            emb = self.vision.embeddings
            x = emb.patch_embedding(pixel_values).flatten(2).transpose(1, 2)
            x = x + emb.position_embedding.weight.unsqueeze(0)
            h = self.vision.encoder(inputs_embeds=x).last_hidden_state
            return self.connector(self.vision.post_layernorm(h))

    def hf_tile(pixel_values):
        mask = torch.ones(1, side, side, dtype=torch.bool)
        h = model.model.vision_model(pixel_values=pixel_values, patch_attention_mask=mask).last_hidden_state
        return model.model.connector(h)

    tile = Tile(model).eval()
    px = torch.rand(1, 3, vc.image_size, vc.image_size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    t0 = time.perf_counter()
    with torch.inference_mode():
        want = hf_tile(px)
    kw = dict(input_names=["pixel_values"], output_names=["features"], opset_version=18)
    try:
        # the TorchScript exporter: one self-contained file, plain ops onnxruntime-web runs
        torch.onnx.export(tile, (px,), a.out, dynamo=False, **kw)
    except TypeError:
        torch.onnx.export(tile, (px,), a.out, **kw)
    print(f"exported {a.out} ({os.path.getsize(a.out) / 1e6:.1f} MB) in {time.perf_counter() - t0:.1f} s; "
          f"features {tuple(want.shape)}", file=sys.stderr)
    try:
        import onnxruntime as ort
    except ImportError:
        print("onnxruntime not installed: the export is not checked here", file=sys.stderr)
        return
    got = ort.InferenceSession(a.out, providers=["CPUExecutionProvider"]).run(None, {"pixel_values": px.numpy()})[0]
    err = float(abs(torch.from_numpy(got) - want).max())
    print(f"onnxruntime vs transformers: max |diff| {err:.2e}", file=sys.stderr)
    if not err < 1e-3:
        sys.exit(f"the exported graph disagrees with transformers (max |diff| {err})")


if __name__ == "__main__":
    main()
