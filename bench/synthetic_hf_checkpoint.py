#!/usr/bin/env python3
"""A synthetic Hugging Face DeepSeek-V3 checkpoint at V3's widths, for measuring `onecard convert` (memory, time).

Writes config.json, model.safetensors.index.json, one safetensors shard per layer plus one for the embeddings
and one for the head, tokenizer.json and tokenizer_config.json. The weights are FP8 e4m3 with 128x128 float32
weight_scale_inv blocks as DeepSeek released them, the norms, router and embeddings BF16, the router bias F32.
Values are random (a pool of random bytes reused at shifting offsets: what matters is size and layout). With
the defaults (2 layers, the first dense, 32 experts) it is 6.0 GB; its largest tensors, embed_tokens and
lm_head at V3's 129280 x 7168 BF16 (1.85 GB), are V3's largest. The tokenizer is the golden tiny one's with
filler tokens up to the vocabulary size.

  bench/synthetic_hf_checkpoint.py OUT_DIR [--layers 2] [--experts 32] [--tokenizer-from ../shared/golden/hf/tiny-v3-fp8]

Standard library only (no numpy).
"""
import argparse
import json
import math
import os
import struct

POOL_BYTES = 64 << 20


def fp8_pool():
    # e4m3fn has NaN at 0x7f and 0xff only: map them to the largest finite magnitudes.
    table = bytes(range(256)).replace(b"\x7f", b"\x7e").replace(b"\xff", b"\xfe")
    return os.urandom(POOL_BYTES).translate(table)


def bf16_pool():
    # Low bytes random; high bytes (sign and exponent) from four values, magnitudes 2^-8 .. 2^-4.
    high = bytes((0x3B, 0x3C, 0xBB, 0xBC)[b & 3] for b in range(256))
    pool = bytearray(POOL_BYTES)
    pool[0::2] = os.urandom(POOL_BYTES // 2)
    pool[1::2] = os.urandom(POOL_BYTES // 2).translate(high)
    return bytes(pool)


class Shard:
    """Tensors of one safetensors file: (name, dtype, shape, writer of n bytes)."""

    def __init__(self, name):
        self.name = name
        self.tensors = []

    def add(self, name, dtype, shape, fill):
        size = math.prod(shape) * {"F8_E4M3": 1, "BF16": 2, "F32": 4}[dtype]
        self.tensors.append((name, dtype, shape, size, fill))

    def write(self, path, pools):
        header, offset = {}, 0
        for name, dtype, shape, size, _ in self.tensors:
            header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
            offset += size
        raw = json.dumps(header).encode()
        raw += b" " * (-len(raw) % 8)
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(raw)) + raw)
            for i, (_, dtype, _, size, fill) in enumerate(self.tensors):
                fill(f, size, pools, i)
        return offset


def random_fill(kind):
    def fill(f, size, pools, seed):
        pool = pools[kind]
        start = (seed * 7919 * 4096) % POOL_BYTES & ~1
        while size > 0:
            n = min(size, POOL_BYTES - start)
            f.write(pool[start : start + n])
            size -= n
            start = 0

    return fill


def const_fill(fmt, value):
    def fill(f, size, pools, seed):
        f.write(struct.pack("<" + fmt, value) * (size // struct.calcsize(fmt)))

    return fill


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--dense-layers", type=int, default=1)
    ap.add_argument("--experts", type=int, default=32)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--tokenizer-from", default=os.path.join(here, "..", "..", "shared", "golden", "hf", "tiny-v3-fp8"))
    a = ap.parse_args()

    # DeepSeek-V3's widths.
    H, V, FF, FF_EXP, HEADS = 7168, 129280, 18432, 2048, 128
    Q_LORA, KV_LORA, NOPE, ROPE, VH = 1536, 512, 128, 64, 128
    cfg = {
        "architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3", "vocab_size": V,
        "hidden_size": H, "intermediate_size": FF, "moe_intermediate_size": FF_EXP,
        "num_hidden_layers": a.layers, "first_k_dense_replace": a.dense_layers, "num_attention_heads": HEADS,
        "num_key_value_heads": HEADS, "n_routed_experts": a.experts, "n_shared_experts": 1,
        "num_experts_per_tok": 8, "n_group": 8, "topk_group": 4, "scoring_func": "sigmoid",
        "topk_method": "noaux_tc", "norm_topk_prob": True, "routed_scaling_factor": 2.5,
        "q_lora_rank": Q_LORA, "kv_lora_rank": KV_LORA, "qk_nope_head_dim": NOPE, "qk_rope_head_dim": ROPE,
        "v_head_dim": VH, "rope_theta": 10000.0, "rms_norm_eps": 1e-06, "max_position_embeddings": 163840,
        "num_nextn_predict_layers": 0, "tie_word_embeddings": False, "hidden_act": "silu",
        "bos_token_id": 508, "eos_token_id": 509, "torch_dtype": "bfloat16",
        "rope_scaling": {"type": "yarn", "factor": 40, "beta_fast": 32, "beta_slow": 1, "mscale": 1.0,
                         "mscale_all_dim": 1.0, "original_max_position_embeddings": 4096},
        "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                                "weight_block_size": [128, 128]},
    }
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)

    norm, bf16, fp8 = const_fill("H", 0x3F80), random_fill("bf16"), random_fill("fp8")

    def matrix(s, name, rows, cols):  # FP8 with its block scales
        s.add(name + ".weight", "F8_E4M3", [rows, cols], fp8)
        s.add(name + ".weight_scale_inv", "F32", [-(-rows // 128), -(-cols // 128)], const_fill("f", 1e-4))

    shards = [Shard("embed")]
    shards[0].add("model.embed_tokens.weight", "BF16", [V, H], bf16)
    for L in range(a.layers):
        s = Shard(f"layer{L}")
        p = f"model.layers.{L}."
        s.add(p + "input_layernorm.weight", "BF16", [H], norm)
        matrix(s, p + "self_attn.q_a_proj", Q_LORA, H)
        s.add(p + "self_attn.q_a_layernorm.weight", "BF16", [Q_LORA], norm)
        matrix(s, p + "self_attn.q_b_proj", HEADS * (NOPE + ROPE), Q_LORA)
        matrix(s, p + "self_attn.kv_a_proj_with_mqa", KV_LORA + ROPE, H)
        s.add(p + "self_attn.kv_a_layernorm.weight", "BF16", [KV_LORA], norm)
        matrix(s, p + "self_attn.kv_b_proj", HEADS * (NOPE + VH), KV_LORA)
        matrix(s, p + "self_attn.o_proj", H, HEADS * VH)
        s.add(p + "post_attention_layernorm.weight", "BF16", [H], norm)
        if L < a.dense_layers:
            matrix(s, p + "mlp.gate_proj", FF, H)
            matrix(s, p + "mlp.up_proj", FF, H)
            matrix(s, p + "mlp.down_proj", H, FF)
        else:
            s.add(p + "mlp.gate.weight", "BF16", [a.experts, H], bf16)
            s.add(p + "mlp.gate.e_score_correction_bias", "F32", [a.experts], const_fill("f", 0.0))
            for e in range(a.experts):
                matrix(s, p + f"mlp.experts.{e}.gate_proj", FF_EXP, H)
                matrix(s, p + f"mlp.experts.{e}.up_proj", FF_EXP, H)
                matrix(s, p + f"mlp.experts.{e}.down_proj", H, FF_EXP)
            matrix(s, p + "mlp.shared_experts.gate_proj", FF_EXP, H)
            matrix(s, p + "mlp.shared_experts.up_proj", FF_EXP, H)
            matrix(s, p + "mlp.shared_experts.down_proj", H, FF_EXP)
        shards.append(s)
    head = Shard("head")
    head.add("model.norm.weight", "BF16", [H], norm)
    head.add("lm_head.weight", "BF16", [V, H], bf16)
    shards.append(head)

    pools = {"fp8": fp8_pool(), "bf16": bf16_pool()}
    weight_map, total = {}, 0
    for i, s in enumerate(shards):
        fname = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        total += s.write(os.path.join(a.out, fname), pools)
        weight_map.update({t[0]: fname for t in s.tensors})
        print(f"{fname}: {len(s.tensors)} tensors", flush=True)
    with open(os.path.join(a.out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=1)

    with open(os.path.join(a.tokenizer_from, "tokenizer.json")) as f:
        tok = json.load(f)
    vocab = tok["model"]["vocab"]
    used = set(vocab.values()) | {t["id"] for t in tok["added_tokens"]}
    for i in range(V):
        if i not in used:
            vocab[f"\u0120syn{i}"] = i
    with open(os.path.join(a.out, "tokenizer.json"), "w") as f:
        json.dump(tok, f, ensure_ascii=False)
    with open(os.path.join(a.tokenizer_from, "tokenizer_config.json")) as src:
        with open(os.path.join(a.out, "tokenizer_config.json"), "w") as dst:
            dst.write(src.read())
    print(f"{a.out}: {total / 1e9:.2f} GB of tensors in {len(shards)} shards")


if __name__ == "__main__":
    main()
