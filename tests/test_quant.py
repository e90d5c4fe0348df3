"""FP8 (W8A8, e4m3) and INT8 (W8A16) projections and the FP8 KV cache, on the CPU; the Triton W8A16 GEMM in
Triton's interpreter where Triton is installed."""
import os

import pytest

torch = pytest.importorskip("torch")

from engine.config import EngineConfig, tiny  # noqa: E402
from engine.llm import LLM  # noqa: E402
from engine.quant import (Fp8Linear, Int8Linear, dequantize_int8, quantize_fp8, quantize_fp8_rows,  # noqa: E402
                          quantize_int8)
from engine.sequence import SamplingParams  # noqa: E402
from engine.weights import build_model  # noqa: E402

PROMPTS = [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13], [5, 6, 7], list(range(30, 80))]


def test_fp8_weights_and_activations_reconstruct_within_e4m3_rounding():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(96, 256, generator=g) * 0.02
    q, s = quantize_fp8(w)
    assert q.dtype == torch.float8_e4m3fn and s.shape == (96,)
    back = q.float() * s[:, None]
    assert ((back - w).norm() / w.norm()).item() < 0.04  # 3 mantissa bits: ~2^-4 per element at worst
    assert (q.float().abs().amax(-1) == 448).all()  # each channel's largest weight maps to e4m3's largest
    x = torch.randn(7, 256, generator=g)
    xq, xs = quantize_fp8_rows(x)
    assert xs.shape == (7, 1) and ((xq.float() * xs - x).norm() / x.norm()).item() < 0.04


def test_fp8_linear_matches_the_float64_product_to_fp8_accuracy():
    g = torch.Generator().manual_seed(1)
    lin = torch.nn.Linear(256, 128, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(128, 256, generator=g) * 0.02)
    x = torch.randn(5, 256, generator=g)
    ref = x.double() @ lin.weight.double().T
    y = Fp8Linear.from_linear(lin)(x)
    err = ((y.double() - ref).norm() / ref.norm()).item()
    assert 1e-3 < err < 0.06  # quantized (not the float path by mistake), and within e4m3's rounding


def test_int8_linear_dequantizes_group_wise():
    g = torch.Generator().manual_seed(2)
    w = torch.randn(64, 256, generator=g) * 0.02
    q, s = quantize_int8(w)
    x = torch.randn(3, 256, generator=g)
    y = Int8Linear(q, s)(x)
    assert torch.allclose(y, x @ dequantize_int8(q, s).T)
    assert ((dequantize_int8(q, s) - w).norm() / w.norm()).item() < 0.01


@pytest.mark.parametrize("quantization,kv,agree", [("fp8", "auto", 0.8), ("bf16", "fp8", 0.9), ("int8", "fp8", 0.8)])
def test_quantized_engine_serves_and_mostly_agrees_with_the_full_precision_tokens(quantization, kv, agree):
    """Greedy tokens of the tiny random model (near-ties are common in random logits, so agreement is a floor,
    not equality); the quantized projections and the FP8 cache are really in use."""
    def run(q, kvd):
        m = build_model(tiny(), seed=3, dtype=torch.float32)
        llm = LLM(EngineConfig(model="tiny", dtype="float32", num_blocks=64, block_size=4, max_num_batched_tokens=16,
                               quantization=q, kv_cache_dtype=kvd), model=m)
        return llm, [s.output for s in llm.generate(PROMPTS, SamplingParams(max_tokens=12))]
    _, ref = run("bf16", "auto")
    llm, got = run(quantization, kv)
    same = sum(a == b for x, y in zip(got, ref) for a, b in zip(x, y)) / sum(len(x) for x in ref)
    assert same >= agree
    if quantization != "bf16":
        assert llm.quant_report["saved_fraction"] > 0.3
        kinds = {type(m).__name__ for m in llm.model.modules()}
        assert {"fp8": "Fp8Linear", "int8": "Int8Linear"}[quantization] in kinds
    if kv == "fp8":
        assert llm.runner.kv[0][0].dtype == torch.float8_e4m3fn and llm.runner.kv[0][0].abs().float().sum() > 0


INTERPRETED = """
import sys, torch
from engine.quant import dequantize_int8, quantize_int8
from kernels import w8a16_mma
M, N, K = map(int, sys.argv[1:4])
g = torch.Generator().manual_seed(M)
w = (torch.randn(N, K, generator=g) * 0.02).half()
q, s = quantize_int8(w)
x = torch.randn(M, K, generator=g).half()
ref = x.double() @ dequantize_int8(q, s).double().T
for cfg in (None, (16, 32, 1), (16, 64, K // 128)):
    y = w8a16_mma.w8a16(x, q, s, cfg)
    err = ((y.double() - ref).norm() / ref.norm()).item()
    assert err < 2e-3, (cfg, err)
try:
    w8a16_mma.w8a16(x, q, s, (16, 32, 3) if (K // 128) % 3 else (16, 32, 7))
    raise SystemExit("a split that does not divide the groups was accepted")
except ValueError as e:
    assert "splits" in str(e)
print("ok")
"""


@pytest.mark.parametrize("M,N,K", [(1, 64, 256), (5, 96, 384), (16, 128, 512), (33, 64, 1024)])
def test_w8a16_tensor_core_gemm_in_the_triton_interpreter(M, N, K):
    """The kernel's arithmetic on the CPU (TRITON_INTERPRET, set before Triton loads: a fresh interpreter;
    float16, as the interpreter has no bfloat16)."""
    pytest.importorskip("triton")
    import subprocess
    import sys
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=os.pathsep.join(sys.path))
    r = subprocess.run([sys.executable, "-c", INTERPRETED, str(M), str(N), str(K)], env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_launch_rule_gives_a_valid_launch_for_every_catalog_projection():
    """The 8-bit-weight GEMM's launch rule, for every quantizable projection of every catalog model at every TP
    degree it splits to and every batch size a step can have: tiles that divide K, K splits that divide the
    tiles, INT8 tiles one scale group wide -- what w8a16() refuses at run time otherwise."""
    pytest.importorskip("triton")
    from contract.catalog import MODELS
    from engine.calibrate import gemm_shapes
    from kernels.w8a16_mma import GROUP, config
    shapes = {(n, k) for n, k in gemm_shapes(list(MODELS), (1, 2, 4, 8)) if k % GROUP == 0 and n < 100_000}
    assert len(shapes) > 50
    for n, k in shapes:
        for m in (1, 3, 16, 17, 32, 33, 64, 65, 256, 8192):
            for per_channel in (False, True):
                c = config(m, n, k, 132, per_channel)
                assert k % c.block_k == 0 and (k // c.block_k) % c.split == 0, (n, k, m, per_channel, c)
                assert per_channel or c.block_k == GROUP, (n, k, m, c)
                assert c.block_m >= min(m, 64) or c.block_m == 64, (n, k, m, c)
