#!/usr/bin/env python3
"""A copy of a GGUF model whose hidden state has a few outlier channels, for measuring the importance matrix.

Trained LLMs have a handful of hidden-state channels whose activations are 10-100x the others at the inputs
of the weight matrices; those channels are what an importance matrix exploits (their columns' rounding
errors are amplified in the output). The golden models have random weights and no such channels, so their
imatrix is nearly flat. This script scales channels of every block's attn_norm and ffn_norm weight (F32),
which multiplies those channels of the normalized input of attn_q_a, attn_kv_a_mqa, the router and the
FFN matrices; everything else is copied byte for byte. The result is another random model, with outliers:
its own BF16 original is the reference.

  bench/outlier_channels.py IN.gguf OUT.gguf [--channels 6] [--min-scale 10] [--max-scale 30] [--seed 1]

The channels and their scales (uniform in [min, max]) are drawn from --seed and printed. Standard library
only.
"""
import argparse
import random
import shutil
import struct

F32 = 0  # ggml type of the norm weights


class Reader:
    def __init__(self, f):
        self.f = f

    def unpack(self, fmt):
        return struct.unpack("<" + fmt, self.f.read(struct.calcsize("<" + fmt)))[0]

    def string(self):
        return self.f.read(self.unpack("Q")).decode("utf-8")

    def value(self, vtype):
        if vtype == 8:
            return self.string()
        if vtype == 9:
            etype, count = self.unpack("I"), self.unpack("Q")
            return [self.value(etype) for _ in range(count)]
        # Metadata value types: 8 is a string, 9 an array, the others scalars.
        fmt = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
        if vtype not in fmt:
            raise SystemExit(f"unknown metadata value type {vtype}")
        return self.unpack(fmt[vtype])


def read_layout(path):
    """(absolute data offset, type, element count) of every tensor, by name."""
    with open(path, "rb") as f:
        r = Reader(f)
        if f.read(4) != b"GGUF":
            raise SystemExit(f"{path}: not a GGUF file")
        version, n_tensors, n_kv = r.unpack("I"), r.unpack("Q"), r.unpack("Q")
        if version < 2:
            raise SystemExit(f"{path}: GGUF version {version} is not supported")
        alignment = 32
        for _ in range(n_kv):
            key = r.string()
            value = r.value(r.unpack("I"))
            if key == "general.alignment":
                alignment = value
        infos = {}
        for _ in range(n_tensors):
            name = r.string()
            dims = [r.unpack("Q") for _ in range(r.unpack("I"))]
            ttype, offset = r.unpack("I"), r.unpack("Q")
            count = 1
            for d in dims:
                count *= d
            infos[name] = (offset, ttype, count)
        data_start = (f.tell() + alignment - 1) // alignment * alignment
    return {name: (data_start + off, t, n) for name, (off, t, n) in infos.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--channels", type=int, default=6)
    ap.add_argument("--min-scale", type=float, default=10.0)
    ap.add_argument("--max-scale", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    layout = read_layout(args.input)
    norms = sorted(n for n in layout if n.endswith((".attn_norm.weight", ".ffn_norm.weight")))
    if not norms:
        raise SystemExit(f"{args.input}: no attn_norm/ffn_norm tensors")
    width = layout[norms[0]][2]
    for name in norms:
        if layout[name][1] != F32 or layout[name][2] != width:
            raise SystemExit(f"{args.input}: {name} is not F32 [{width}]")
    if not 0 < args.channels <= width:
        raise SystemExit(f"--channels must be in 1..{width}")

    rng = random.Random(args.seed)
    channels = sorted(rng.sample(range(width), args.channels))
    scales = {c: rng.uniform(args.min_scale, args.max_scale) for c in channels}
    print("channels and scales:", ", ".join(f"{c}: {scales[c]:.1f}x" for c in channels))

    shutil.copyfile(args.input, args.output)
    with open(args.output, "r+b") as f:
        for name in norms:
            offset = layout[name][0]
            for c in channels:
                f.seek(offset + 4 * c)
                (v,) = struct.unpack("<f", f.read(4))
                f.seek(offset + 4 * c)
                f.write(struct.pack("<f", v * scales[c]))
    print(f"scaled {len(channels)} channels of {len(norms)} norms: {args.output}")


if __name__ == "__main__":
    main()
