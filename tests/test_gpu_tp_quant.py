"""On GPUs (skipped elsewhere): tensor-parallel serving over NCCL, a killed rank, FP8 and INT8 against references."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("no CUDA GPU", allow_module_level=True)
pytestmark = pytest.mark.gpu

from contract.catalog import MODELS  # noqa: E402
from engine.config import EngineConfig  # noqa: E402
from engine.llm import LLM, release_gpu_memory  # noqa: E402
from engine.quant import Fp8Linear, dequantize_int8, quantize_int8  # noqa: E402
from engine.sequence import SamplingParams  # noqa: E402

two_gpus = pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")
PROMPTS = [list(range(100 + 7 * i, 140 + 9 * i)) for i in range(4)]


@two_gpus
def test_tp2_serving_gives_tp1_greedy_tokens_on_gpus_1b_float32():
    params = SamplingParams(max_tokens=24)
    kw = dict(model="llama-3.2-1b", dtype="float32", num_blocks=1024, max_num_seqs=8, max_num_batched_tokens=256)
    with LLM(EngineConfig(**kw)) as one:
        ref = [s.output for s in one.generate(PROMPTS, params)]
    release_gpu_memory()
    with LLM(EngineConfig(tensor_parallel_size=2, **kw)) as two:
        got = [s.output for s in two.generate(PROMPTS, params)]
        seqs = two.replay([0.0, 0.02, 0.05, 0.1], [40, 60, 20, 90], [10, 20, 30, 5])
    assert got == ref
    assert [s.status for s in seqs] == ["completed"] * 4


KILL = textwrap.dedent("""
    import json, sys, time
    from engine.config import EngineConfig
    from engine.llm import LLM
    from engine.sequence import SamplingParams
    llm = LLM(EngineConfig(model="llama-3.2-1b", num_blocks=2048, max_num_seqs=16, tensor_parallel_size=2,
                           tp_timeout_s=30))
    print(json.dumps({"workers": [p.pid for p in llm.tp.procs]}), flush=True)
    t = time.time()
    try:
        while time.time() - t < 120:
            llm.generate([[1, 2, 3] * 20] * 16, SamplingParams(max_tokens=64))
    except RuntimeError as e:
        print(f"engine stopped: {e}", file=sys.stderr, flush=True)
        llm.shutdown()
        sys.exit(4)
""")


@two_gpus
def test_a_killed_rank_stops_the_gpu_engine_with_a_clear_error_and_leaves_no_process(tmp_path):
    script = tmp_path / "serve.py"
    script.write_text(KILL)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    workers = json.loads(proc.stdout.readline())["workers"]
    time.sleep(3.0)
    t = time.time()
    os.kill(workers[0], signal.SIGKILL)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the engine did not stop within 60 s of a rank's death")
    assert proc.returncode != 0 and time.time() - t < 45
    assert "tensor-parallel rank 1" in err and "died" in err, err[-3000:]
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.mark.parametrize("M", [1, 16, 48, 64, 512])
@pytest.mark.parametrize("K,N", [(4096, 14336), (14336, 4096)])
def test_fp8_linear_on_the_fp8_tensor_cores_matches_the_float64_product(M, K, N):
    """Both of Fp8Linear's paths (the 8-bit-weight GEMM at decode sizes, longer at long K; torch._scaled_mm)."""
    g = torch.Generator(device="cuda").manual_seed(M)
    lin = torch.nn.Linear(K, N, bias=False, device="cuda", dtype=torch.bfloat16)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(N, K, generator=g, device="cuda") * 0.02)
    x = torch.randn(M, K, generator=g, device="cuda").bfloat16()
    ref = x.double() @ lin.weight.double().T
    y = Fp8Linear.from_linear(lin)(x)
    assert y.dtype == torch.bfloat16
    assert ((y.double() - ref).norm() / ref.norm()).item() < 0.05


@pytest.mark.parametrize("M", [1, 8, 16, 32, 64, 128, 256])
def test_w8a16_tensor_core_gemm_matches_the_dequantized_product(M):
    from kernels import w8a16_mma
    g = torch.Generator(device="cuda").manual_seed(M)
    for N, K in ((28672, 4096), (4096, 14336), (6144, 4096)):
        q, s = quantize_int8(torch.randn(N, K, generator=g, device="cuda").bfloat16() * 0.02)
        x = torch.randn(M, K, generator=g, device="cuda").bfloat16()
        y = torch.full((M, N), float("nan"), device="cuda", dtype=torch.bfloat16)
        y = w8a16_mma.w8a16(x, q, s)
        ref = x.double() @ dequantize_int8(q, s).double().T
        assert not y.isnan().any()
        assert ((y.double() - ref).norm() / ref.norm()).item() < 5e-3


@pytest.mark.parametrize("M", [16, 32, 64])
def test_split_k_partials_added_in_the_kernel_equal_the_sum_after_it_call_after_call_and_in_a_graph(M, monkeypatch):
    """Each tile's last program adds the split-K partials (an atomic count per tile, reset by that program): the
    result equals the float32 sum taken after the kernel, stays the same over repeated calls (the counters go back
    to zero) and over replays of a CUDA graph that captured the call."""
    from engine.quant import quantize_fp8
    from kernels import w8a16_mma
    g = torch.Generator(device="cuda").manual_seed(M)
    split = 0
    for (N, K), fp8 in (((4096, 4096), False), ((4096, 14336), False), ((6144, 4096), True), ((1024, 8192), True)):
        w = torch.randn(N, K, generator=g, device="cuda") * 0.02
        if fp8:
            q, s = quantize_fp8(w)
            s = s[None, :]
        else:
            q, s = quantize_int8(w.bfloat16())
        if w8a16_mma.config(M, N, K, per_channel=fp8).split == 1:
            continue
        split += 1
        x = torch.randn(M, K, generator=g, device="cuda").bfloat16()
        monkeypatch.setattr(w8a16_mma, "FUSED_SPLIT", False)
        ref = w8a16_mma.w8a16(x, q, s).float()
        monkeypatch.setattr(w8a16_mma, "FUSED_SPLIT", True)
        outs = [w8a16_mma.w8a16(x, q, s).float() for _ in range(3)]
        for y in outs:
            assert torch.allclose(y, ref, rtol=1e-2, atol=1e-3), (N, K, fp8)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            yg = w8a16_mma.w8a16(x, q, s)
        for _ in range(3):
            yg.zero_()
            graph.replay()
            torch.cuda.synchronize()
            assert torch.allclose(yg.float(), ref, rtol=1e-2, atol=1e-3), (N, K, fp8, "graph")
        assert int(w8a16_mma._LOCKS[x.device].abs().sum()) == 0
    assert split >= 2  # at every M at least two of the shapes split K


def test_int8_one_pass_dequantize_equals_the_pytorch_ops_and_serves_prefill_rows(monkeypatch):
    """The Triton dequantize rounds q * s once from float32, as the PyTorch ops do (exactly equal); with
    INT8_DEQUANT_ROWS set, an Int8Linear at that many rows takes dequantize + cuBLAS and agrees with the product."""
    from engine import quant
    from kernels import int8_dequant
    g = torch.Generator(device="cuda").manual_seed(3)
    for N, K in ((6144, 4096), (4096, 14336), (130, 256)):  # 130 x 256: a tail shorter than one program's block
        q, s = quantize_int8(torch.randn(N, K, generator=g, device="cuda").bfloat16() * 0.02)
        assert torch.equal(int8_dequant.dequantize(q, s), dequantize_int8(q, s))
    lin = quant.Int8Linear(q, s)
    monkeypatch.setattr(quant, "INT8_DEQUANT_ROWS", 64)
    for m in (63, 64, 300):
        x = torch.randn(m, 256, generator=g, device="cuda").bfloat16()
        ref = x.double() @ dequantize_int8(q, s).double().T
        assert ((lin(x).double() - ref).norm() / ref.norm()).item() < 5e-3
    with pytest.raises(ValueError, match="int8 dequantize"):
        int8_dequant.dequantize(q.float(), s)


@pytest.mark.parametrize("M", [1, 16, 32, 64, 128, 256])
def test_8bit_weight_gemm_with_fp8_weights_matches_the_dequantized_product(M):
    """Every launch shape the rule picks (swapped or not, split or not) on the 8B's and a 70B TP=2 shard's
    projections: bf16 activations times the e4m3 weights with their channel scales."""
    from engine.quant import quantize_fp8
    from kernels import w8a16_mma
    g = torch.Generator(device="cuda").manual_seed(M)
    for N, K in ((28672, 4096), (4096, 14336), (6144, 4096), (5120, 8192)):
        q, s = quantize_fp8(torch.randn(N, K, generator=g, device="cuda") * 0.02)
        x = torch.randn(M, K, generator=g, device="cuda").bfloat16()
        y = w8a16_mma.w8a16(x, q, s[None, :])
        ref = x.double() @ (q.double() * s.double()[:, None]).T
        assert y.dtype == torch.bfloat16 and not y.isnan().any()
        assert ((y.double() - ref).norm() / ref.norm()).item() < 5e-3, (N, K)


@pytest.mark.parametrize("M", [16, 33, 64, 128])
def test_w8a8_fp8_tensor_core_gemm_matches_the_scaled_product_over_launch_shapes(M):
    """e4m3 activations (per-row scales) times e4m3 weights (channel scales) on the FP8 tensor cores, swapped
    and not, split along K and not: the float64 product of what was quantized, to fp32-accumulation accuracy."""
    from engine.quant import quantize_fp8, quantize_fp8_rows
    from kernels import w8a16_mma
    g = torch.Generator(device="cuda").manual_seed(M)
    for N, K in ((6144, 4096), (4096, 4096), (4096, 14336)):
        q, s = quantize_fp8(torch.randn(N, K, generator=g, device="cuda") * 0.02)
        xq, xs = quantize_fp8_rows(torch.randn(M, K, generator=g, device="cuda").bfloat16())
        ref = (xq.double() * xs.double()) @ (q.double() * s.double()[:, None]).T
        for cfg in (None, (64, 64, 4, 256, 4, 3, True), (64, 64, 1, 128, 4, 3, False), (32, 128, 2, 256, 8, 3, True)):
            y = w8a16_mma.w8a8(xq, xs, q, s[None, :], cfg)
            assert y.dtype == torch.bfloat16 and not y.isnan().any()
            assert ((y.double() - ref).norm() / ref.norm()).item() < 5e-3, (N, K, cfg)
    with pytest.raises(ValueError, match="e4m3"):
        w8a16_mma.w8a8(xq.bfloat16(), xs, q, s)


def test_fp8_and_int8_engines_logits_stay_near_the_float32_reference():
    """The 1B with random weights: last-position logits of one prefill, relative L2 error against fp32 (bf16's
    own error is the yardstick: the quantized engines may be a few times it, not orders of magnitude)."""
    from engine.weights import build_model
    prompts = [list(range(200, 328))]
    ref = build_model(MODELS["llama-3.2-1b"], seed=0, dtype=torch.float32, device="cuda")
    out = {}
    for name, dtype, q, kv in (("fp32", "float32", "bf16", "auto"), ("bf16", "bfloat16", "bf16", "auto"),
                               ("fp8", "bfloat16", "fp8", "auto"), ("fp8+kv8", "bfloat16", "fp8", "fp8"),
                               ("int8", "bfloat16", "int8", "auto")):
        m = ref if name == "fp32" else build_model(MODELS["llama-3.2-1b"], seed=0, dtype=torch.bfloat16, device="cuda")
        llm = LLM(EngineConfig(model="llama-3.2-1b", dtype=dtype, quantization=q, kv_cache_dtype=kv, num_blocks=512,
                               cuda_graphs=False), model=m)
        llm.add(prompts[0], SamplingParams(max_tokens=1))
        batch = llm.sched.schedule()
        logits, _ = llm.runner.forward(batch)
        out[name] = logits.double()
        del llm, m
        release_gpu_memory()
    err = {k: ((v - out["fp32"]).norm() / out["fp32"].norm()).item() for k, v in out.items() if k != "fp32"}
    print(json.dumps(err))
    assert err["bf16"] < 0.1
    # e4m3 keeps 4 significant bits to bf16's 8 (a 16x coarser rounding per element); INT8 with group-128 scales
    # keeps about 8. A broken path (a scale lost or applied twice, a cache misread) errs by ~100% or more.
    assert err["int8"] < 6 * err["bf16"] + 0.05, err
    for k in ("fp8", "fp8+kv8"):
        assert err[k] < 16 * err["bf16"] + 0.05, err
