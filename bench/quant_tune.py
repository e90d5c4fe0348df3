"""Launch shapes for the 8-bit-weight GEMM (kernels/w8a16_mma.py), INT8 and FP8 weights, measured against
cuBLAS bf16 and torch._scaled_mm in the same run on one GPU, weights cold (several copies cycled), each call
timed inside a CUDA graph as decode steps run it.

    python bench/quant_tune.py --out quant_tune.json        # on a GPU, about 4 minutes

Prints, per layer of the 8B and batch size, the best launch shape, what the shipped rule (w8a16_mma.config)
picks, and both against bf16, so the rule can be checked against the search that informed it.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quant_speed import SHAPES, gpu_time  # noqa: E402

MS = (16, 32, 64, 128, 256)
# The 8B's projections informed the rule (w8a16_mma.config); the other two sets are shapes it was not read from
SHAPE_SETS = {
    "8b": SHAPES,
    "qwen7b": {"qkv": (4608, 3584), "o": (3584, 3584), "gate_up": (37888, 3584), "down": (3584, 18944)},
    "70b-tp2": {"qkv": (5120, 8192), "o": (8192, 4096), "gate_up": (28672, 8192), "down": (8192, 14336)},
}


def candidates(m: int, fmt: str, k: int):
    from kernels.w8a16_mma import GROUP, Config
    bms = [16 if m <= 16 else 32 if m <= 32 else 64] + ([128] if m >= 128 and fmt == "w8a8" else [])
    bks = (GROUP, 2 * GROUP) if fmt in ("fp8", "w8a8") else (GROUP,)
    for swap, bm, bn, bk, stages, warps, split in itertools.product(
            (False, True), bms, (32, 64, 128), bks, (3, 5), (4, 8), (1, 2, 4)):
        if (warps == 8 and bn == 32) or (swap and bn < 64) or (k // bk) % split:
            continue
        yield Config(bm, bn, split, bk, warps, stages, swap)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path)
    ap.add_argument("--ms", type=int, nargs="*", default=list(MS))
    ap.add_argument("--shapes", nargs="*", default=["8b"], choices=list(SHAPE_SETS))
    ap.add_argument("--no-search", action="store_true", help="time only bf16, the FP8 paths and the shipped rule")
    ap.add_argument("--formats", nargs="*", default=["int8", "fp8", "w8a8"], choices=["int8", "fp8", "w8a8"],
                    help="w8a8: e4m3 activations (quantized per row in the timed call) on the FP8 tensor cores")
    a = ap.parse_args()
    import torch
    import torch.nn.functional as F

    from engine.quant import Fp8Linear, quantize_fp8_rows, quantize_int8
    from kernels import w8a16_mma
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    res = {"device": torch.cuda.get_device_name(), "sms": sms, "timing": "CUDA graphs, weights cold", "rows": []}
    t0 = time.time()
    shapes = [(f"{sset}/{name}", nk) for sset in a.shapes for name, nk in SHAPE_SETS[sset].items()]
    for name, (n, k) in shapes:
        copies = max(2, -(-(200 << 20) // (n * k)))
        ws = [torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * 0.02 for _ in range(copies)]
        f8 = [Fp8Linear.from_linear_weight(w) for w in ws]
        fmts = {"int8": [quantize_int8(w) for w in ws], "fp8": [(f.qweight, f.scales) for f in f8]}
        fmts["w8a8"] = fmts["fp8"]  # the same e4m3 weights, activations quantized per row each call (timed)
        for m in a.ms:
            x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
            cyc = itertools.cycle
            wi, fi = cyc(ws), cyc(f8)
            bf16 = gpu_time(lambda: F.linear(x, next(wi)), inner=copies)
            scaled = gpu_time(lambda: next(fi).scaled_mm(x), inner=copies)
            one = torch.ones((), device="cuda")

            def tensorwise(f):  # cuBLASLt's FP8 GEMM (unit scales), both scales applied after: the other way
                xq, xs = quantize_fp8_rows(x)
                y = torch._scaled_mm(xq, f.qweight.t(), scale_a=one, scale_b=one, out_dtype=x.dtype)
                return y * (xs * f.scales)
            tensorwise_s = gpu_time(lambda: tensorwise(next(fi)), inner=copies)
            engine_fp8 = gpu_time(lambda: next(fi)(x), inner=copies)  # Fp8Linear's own choice of path
            row = {"layer": name, "n": n, "k": k, "m": m, "bf16_s": bf16, "fp8_scaled_mm_s": scaled,
                   "fp8_tensorwise_s": tensorwise_s, "fp8_engine_s": engine_fp8, "int8": {}, "fp8": {}, "w8a8": {}}
            for fmt, objs in fmts.items():
                if fmt not in a.formats:
                    continue
                if fmt == "w8a8":
                    def call(w, c=None):
                        return w8a16_mma.w8a8(*quantize_fp8_rows(x), *w, c)
                else:
                    def call(w, c=None):
                        return w8a16_mma.w8a16(x, *w, c)
                for cfg in ([] if a.no_search else candidates(m, fmt, k)):
                    it = cyc(objs)
                    try:
                        t = gpu_time(lambda: call(next(it), cfg), inner=copies)
                    except Exception as e:  # a shape the compiler rejects (shared memory): recorded, skipped
                        row[fmt][",".join(map(str, cfg))] = f"error: {str(e)[:60]}"
                        continue
                    row[fmt][",".join(map(str, cfg))] = t
                rule = (w8a16_mma.w8a8_config(m, n, k) if fmt == "w8a8"  # what w8a8() launches by default
                        else w8a16_mma.config(m, n, k, sms, fmt != "int8"))
                it = cyc(objs)
                rule_t = gpu_time(lambda: call(next(it)), inner=copies)
                times = {c: t for c, t in row[fmt].items() if isinstance(t, float)}
                row[f"{fmt}_rule"] = ",".join(map(str, rule))
                times.setdefault(row[f"{fmt}_rule"], rule_t)
                best = min(times, key=times.get)
                row[f"{fmt}_best"] = best
                row[f"{fmt}_rule"] = ",".join(map(str, rule))
                row[f"{fmt}_rule_s"] = rule_t
                print(f"{name:15} M={m:4d} {fmt}: bf16 {bf16 * 1e6:7.1f} us  best {bf16 / times[best]:.2f}x ({best})  "
                      f"rule {bf16 / rule_t:.2f}x ({row[f'{fmt}_rule']})"
                      + (f"  scaled_mm {bf16 / scaled:.2f}x tensorwise {bf16 / tensorwise_s:.2f}x"
                         f"  engine path {bf16 / engine_fp8:.2f}x" if fmt == "fp8" else "")
                      + f"  [{time.time() - t0:.0f} s]", flush=True)
            res["rows"].append(row)
            if a.out:
                a.out.write_text(json.dumps(res, indent=1))
        del ws, f8, fmts
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
