"""GGUF → CTranslate2: bring a Llama-family instruct model published as a GGUF file (the format most
small open models ship in) to the runtime this appliance already has, offline, in seconds.

The GGUF tensors are dequantised with the `gguf` package (pure Python and numpy) and put into a
CTranslate2 decoder spec (pre-norm RMSNorm, rotary embeddings, gated SiLU feed-forward, grouped-query
attention: the Llama layout), then requantised by CTranslate2 (int8 by default). llama.cpp's converter
stores the query and key projections permuted for interleaved rotary embeddings, which is exactly
CTranslate2's `rotary_interleave=True`, so the weights go in as they are. The tokenizer (GPT-2-style
byte-level BPE: tokens and merges in the GGUF metadata) is rebuilt as a `tokenizers` tokenizer.json.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from appliance.assist.engine import MANIFEST, EngineError

# GGUF token types (llama.cpp's llama_token_type): 3 = control, 4 = user-defined; both are whole tokens.
_SPECIAL_TYPES = {3, 4}


def _field(reader: Any, key: str, default: Any = None) -> Any:
    f = reader.fields.get(key)
    return default if f is None else f.contents()


def _chat_template(template: str) -> str:
    if "<|start_header_id|>" in template:
        return "llama3"
    if "<|im_start|>" in template:
        return "chatml"
    raise EngineError("the GGUF's chat template is neither ChatML nor Llama 3; no other template is supported yet")


def convert_gguf(source: Path, out_dir: Path, *, quantization: str = "int8", context_length: int | None = None) -> dict[str, Any]:
    """Write a model directory (CTranslate2 weights, tokenizer.json, sotto-llm.json) from a Llama GGUF
    file; returns the manifest. The directory is written beside `out_dir` and renamed into place, so a
    failed conversion leaves nothing half-made."""
    import ctranslate2  # noqa: F401  (fails early, with its own message, where the runtime is missing)
    import numpy as np
    from ctranslate2.specs import common_spec, transformer_spec
    from gguf import GGUFReader
    from gguf.quants import dequantize
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    started = time.monotonic()
    try:
        reader = GGUFReader(str(source))
    except (OSError, ValueError) as exc:
        raise EngineError(f"{source} is not a readable GGUF file: {exc}") from None
    arch = _field(reader, "general.architecture")
    if arch != "llama":
        raise EngineError(f"{source}: architecture {arch!r} is not supported (Llama-family models only)")
    if _field(reader, "tokenizer.ggml.model") != "gpt2":
        raise EngineError(f"{source}: only byte-level BPE (gpt2-style) tokenizers are supported")
    layers = int(_field(reader, "llama.block_count"))
    heads = int(_field(reader, "llama.attention.head_count"))
    heads_kv = int(_field(reader, "llama.attention.head_count_kv", heads))
    tensors = {t.name: t for t in reader.tensors}

    def weight(name: str) -> Any:
        t = tensors[name]
        values = dequantize(t.data, t.tensor_type)
        shape = [int(x) for x in reversed(t.shape)]  # GGUF lists dimensions innermost first
        return np.ascontiguousarray(values.reshape(shape), dtype=np.float32)

    spec = transformer_spec.TransformerDecoderModelSpec.from_config(
        layers,
        heads,
        activation=common_spec.Activation.SWISH,
        pre_norm=True,
        ffn_glu=True,
        rms_norm=True,
        rotary_dim=0,
        rotary_interleave=True,
        rotary_base=float(_field(reader, "llama.rope.freq_base", 10000.0)),
        num_heads_kv=heads_kv if heads_kv != heads else None,
    )
    decoder = spec.decoder
    decoder.scale_embeddings = False
    embeddings = weight("token_embd.weight")
    decoder.embeddings.weight = embeddings
    decoder.layer_norm.gamma = weight("output_norm.weight")
    decoder.projection.weight = weight("output.weight") if "output.weight" in tensors else embeddings  # tied
    for i, layer in enumerate(decoder.layer):
        p = f"blk.{i}."
        layer.self_attention.layer_norm.gamma = weight(p + "attn_norm.weight")
        layer.self_attention.linear[0].weight = np.concatenate(
            [weight(p + "attn_q.weight"), weight(p + "attn_k.weight"), weight(p + "attn_v.weight")]
        )
        layer.self_attention.linear[1].weight = weight(p + "attn_output.weight")
        layer.ffn.layer_norm.gamma = weight(p + "ffn_norm.weight")
        layer.ffn.linear_0.weight = weight(p + "ffn_gate.weight")
        layer.ffn.linear_0_noact.weight = weight(p + "ffn_up.weight")
        layer.ffn.linear_1.weight = weight(p + "ffn_down.weight")

    tokens = [str(t) for t in _field(reader, "tokenizer.ggml.tokens")]
    types = list(_field(reader, "tokenizer.ggml.token_type", []))
    spec.register_vocabulary(tokens)
    spec.config.bos_token = tokens[int(_field(reader, "tokenizer.ggml.bos_token_id", 1))]
    spec.config.eos_token = tokens[int(_field(reader, "tokenizer.ggml.eos_token_id", 2))]
    spec.config.unk_token = tokens[int(_field(reader, "tokenizer.ggml.unknown_token_id", 0))]
    spec.config.layer_norm_epsilon = float(_field(reader, "llama.attention.layer_norm_rms_epsilon", 1e-5))

    merges = [tuple(m.split(" ", 1)) for m in _field(reader, "tokenizer.ggml.merges")]
    tokenizer = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges, fuse_unk=False))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens(
        [
            AddedToken(t, special=True, normalized=False)
            for t, kind in zip(tokens, types, strict=False)
            if int(kind) in _SPECIAL_TYPES
        ]
    )
    manifest = {
        "kind": "llm",
        "chat_template": _chat_template(str(_field(reader, "tokenizer.chat_template", ""))),
        "context_length": int(context_length or _field(reader, "llama.context_length", 4096)),
        "licence": str(_field(reader, "general.license", "")),
        "source": f"{source.name} ({_field(reader, 'general.name', '')})",
        "quantization": quantization,
    }

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        spec.validate()
        spec.optimize(quantization=quantization)
        spec.save(str(work))
        tokenizer.save(str(work / "tokenizer.json"))
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if out_dir.exists():
            raise EngineError(f"{out_dir} already exists; remove it or choose another directory")
        work.rename(out_dir)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    manifest["seconds"] = round(time.monotonic() - started, 2)
    return manifest
