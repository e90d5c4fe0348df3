"""Weights: a local Hugging Face checkpoint (config.json + safetensors), or a seeded random init.
Never a hub download."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from engine.config import to_hf_config
from engine.model import Llama, rope_inv_freq
from engine.parallel import shard_tensor


def _hf_to_ours(sd: dict, spec, rank: int = 0, tp: int = 1) -> dict:
    """Map HF Llama names to ours, fusing QKV and gate/up, slicing for tensor parallelism."""
    def shard(t, dim):
        if tp == 1:
            return t
        return t.chunk(tp, dim=dim)[rank]
    out = {}
    L = spec.num_layers
    emb = sd["model.embed_tokens.weight"]
    out["embed.weight"] = shard(emb, 0)  # vocabulary-parallel
    out["norm.weight"] = sd["model.norm.weight"]
    out["lm_head.weight"] = shard(sd.get("lm_head.weight", emb), 0)
    for i in range(L):
        p = f"model.layers.{i}."
        q, k, v = (sd[p + f"self_attn.{n}_proj.weight"] for n in "qkv")
        out[f"layers.{i}.attn.qkv.weight"] = torch.cat([shard(q, 0), shard(k, 0), shard(v, 0)], 0)
        out[f"layers.{i}.attn.o.weight"] = shard(sd[p + "self_attn.o_proj.weight"], 1)
        g, u = sd[p + "mlp.gate_proj.weight"], sd[p + "mlp.up_proj.weight"]
        out[f"layers.{i}.mlp.gate_up.weight"] = torch.cat([shard(g, 0), shard(u, 0)], 0)
        out[f"layers.{i}.mlp.down.weight"] = shard(sd[p + "mlp.down_proj.weight"], 1)
        out[f"layers.{i}.attn_norm.weight"] = sd[p + "input_layernorm.weight"]
        out[f"layers.{i}.mlp_norm.weight"] = sd[p + "post_attention_layernorm.weight"]
    return out


def ours_to_hf(model: Llama) -> dict:
    """Our weights under HF names, as views (no copies): for saving a checkpoint or sharing with transformers."""
    s, sd = model.spec, {}
    q, kv = s.q_dim, s.kv_dim
    sd["model.embed_tokens.weight"] = model.embed.weight
    sd["model.norm.weight"] = model.norm.weight
    if not s.tie_word_embeddings:
        sd["lm_head.weight"] = model.lm_head.weight
    for i, layer in enumerate(model.layers):
        p = f"model.layers.{i}."
        w = layer.attn.qkv.weight
        sd[p + "self_attn.q_proj.weight"], sd[p + "self_attn.k_proj.weight"], sd[p + "self_attn.v_proj.weight"] = \
            w[:q], w[q:q + kv], w[q + kv:]
        sd[p + "self_attn.o_proj.weight"] = layer.attn.o.weight
        gu, ff = layer.mlp.gate_up.weight, s.intermediate_size
        sd[p + "mlp.gate_proj.weight"], sd[p + "mlp.up_proj.weight"] = gu[:ff], gu[ff:]
        sd[p + "mlp.down_proj.weight"] = layer.mlp.down.weight
        sd[p + "input_layernorm.weight"] = layer.attn_norm.weight
        sd[p + "post_attention_layernorm.weight"] = layer.mlp_norm.weight
    return sd


def build_model(spec, *, checkpoint: str | None = None, seed: int = 0, dtype=torch.bfloat16, device="cpu",
                rank: int = 0, tp: int = 1) -> Llama:
    if tp > 1 and not checkpoint:  # the same seeded weights as TP=1, sliced to this rank
        with torch.device("meta"):
            model = Llama(spec, tp, rank)
        model = model.to(dtype).to_empty(device=device)  # meta first: no float32 copy on the device
        model.inv_freq = rope_inv_freq(spec.hd, spec.rope_theta, spec.rope_scaling).to(device)
        random_init(model, seed, full=spec, rank=rank, tp=tp)
        if spec.tie_word_embeddings:
            model.lm_head.weight = model.embed.weight
        return model.eval()
    with torch.device("meta"):
        model = Llama(spec, tp, rank)
    # converted on the meta device, then allocated: allocating float32 first would leave its memory in the
    # caching allocator, where the KV pool's sizing (free device memory) counts it as used
    model = model.to(dtype).to_empty(device=device)
    model.inv_freq = rope_inv_freq(spec.hd, spec.rope_theta, spec.rope_scaling).to(device)  # kept in float32
    if checkpoint:
        load_checkpoint(model, checkpoint, rank, tp)
    else:
        random_init(model, seed)
    if spec.tie_word_embeddings:
        model.lm_head.weight = model.embed.weight
    return model.eval()


@torch.no_grad()
def random_init(model: Llama, seed: int, full=None, rank: int = 0, tp: int = 1) -> None:
    """Seeded N(0, 0.02) weights, unit norms: a catalog architecture without a checkpoint. With `full` (the
    spec), `model` is rank `rank`'s shard of TP `tp`: each full parameter is drawn in the TP=1 order, one at a
    time, and sliced, so the shards are slices of the TP=1 model without ever holding all of it."""
    dev = model.embed.weight.device
    g = torch.Generator(device=dev).manual_seed(seed)
    if full is None:
        params = list(model.named_parameters())
    else:
        with torch.device("meta"):
            params = list(Llama(full, 1, 0).named_parameters())
    own = dict(model.named_parameters())
    for name, p in params:
        if name.endswith("norm.weight"):
            own[name].fill_(1.0)
            continue
        t = torch.randn(p.shape, generator=g, device=dev, dtype=torch.float32).to(own[name].dtype) * 0.02
        own[name].copy_(t if full is None else shard_tensor(name, t, full, rank, tp))
        del t


@torch.no_grad()
def load_checkpoint(model: Llama, path: str, rank: int = 0, tp: int = 1) -> None:
    from safetensors.torch import load_file
    files = sorted(Path(path).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no *.safetensors in {path}")
    sd = {}
    for f in files:
        sd.update(load_file(str(f)))
    ours = _hf_to_ours(sd, model.spec, rank, tp)
    own = dict(model.named_parameters())
    for k, t in ours.items():
        if k == "lm_head.weight" and model.spec.tie_word_embeddings:
            continue
        if own[k].shape != t.shape:
            raise ValueError(f"checkpoint tensor for {k} has shape {tuple(t.shape)}, expected {tuple(own[k].shape)}")
        own[k].copy_(t)


def save_checkpoint(model: Llama, path: str) -> None:

    from safetensors.torch import save_file

    Path(path).mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in ours_to_hf(model).items()}, str(Path(path, "model.safetensors")))
    Path(path, "config.json").write_text(json.dumps(to_hf_config(model.spec), indent=2))
