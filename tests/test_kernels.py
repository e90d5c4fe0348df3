"""CUDA kernels against float64 references (skipped without CuPy and a GPU). Outputs are poisoned with NaN
before each run, so a kernel that skips an element fails; caches outside each sequence's context are
poisoned too, so a kernel that reads past context_lens fails."""

import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("needs a CUDA GPU", allow_module_level=True)
pytest.importorskip("cupy")

from kernels import fused, paged_attention, seed_attention, w8a16  # noqa: E402

pytestmark = pytest.mark.gpu
BF16_TOL = 1e-2


def rel(out, ref):
    out = out.double()
    assert torch.isfinite(out).all(), "output has NaN/inf (an element was never written?)"
    return ((out - ref.double()).norm() / ref.double().norm()).item()


def nan_like(shape, dtype):
    return torch.full(shape, float("nan"), dtype=dtype, device="cuda")


@pytest.mark.parametrize("S", [64, 200, 1024])
def test_seed_kernels_match_float64_softmax_attention(S):
    g = torch.Generator(device="cuda").manual_seed(S)
    q, k, v = (torch.randn(S, 128, device="cuda", generator=g) * 0.3 for _ in range(3))
    ref = seed_attention.reference(q, k, v)
    for fn in (seed_attention.slow, seed_attention.seed_optimized, seed_attention.flash):
        out = fn(q, k, v, out=nan_like((S, 128), torch.float32))
        e = rel(out, ref)
        print(fn.__name__, S, e)
        assert e < 1e-5, fn.__name__


@pytest.mark.parametrize("nsplit", [1, 3, 8])
def test_flash_splits_merge_exactly_and_scale_applies(nsplit):
    S = 777  # not a multiple of any tile
    g = torch.Generator(device="cuda").manual_seed(nsplit)
    q, k, v = (torch.randn(S, 128, device="cuda", generator=g) for _ in range(3))
    out = seed_attention.flash(q, k, v, scale=128 ** -0.5, nsplit=nsplit, out=nan_like((S, 128), torch.float32))
    assert rel(out, seed_attention.reference(q, k, v, 128 ** -0.5)) < 1e-5


def make_paged(B, lens, nkv, D, bs, seed, extra_blocks=7):
    """Random caches with each sequence's blocks scattered; every slot no sequence owns below its length is NaN."""
    g = torch.Generator(device="cuda").manual_seed(seed)
    need = [-(-L // bs) for L in lens]
    nb = sum(need) + extra_blocks
    kc = torch.full((nb, bs, nkv, D), float("nan"), dtype=torch.bfloat16, device="cuda")
    vc = kc.clone()
    perm = torch.randperm(nb, generator=torch.Generator().manual_seed(seed)).tolist()
    width = max(need) + 2  # wider than any sequence: padding entries
    tables = torch.zeros(B, width, dtype=torch.long)
    off = 0
    for b, L in enumerate(lens):
        blocks = perm[off:off + need[b]]
        off += need[b]
        tables[b, :need[b]] = torch.tensor(blocks)
        tables[b, need[b]:] = perm[-1]  # a padding entry pointing at a poisoned block
        for i, blk in enumerate(blocks):
            n = min(bs, L - i * bs)
            kc[blk, :n] = torch.randn(n, nkv, D, device="cuda", generator=g).bfloat16()
            vc[blk, :n] = torch.randn(n, nkv, D, device="cuda", generator=g).bfloat16()
    return kc, vc, tables.cuda(), torch.tensor(lens, dtype=torch.long, device="cuda")


@pytest.mark.parametrize("D,nh,nkv,lens", [
    (128, 32, 8, [1, 16, 17, 300, 4096]),       # 8B-shaped, ragged, one long sequence (several partitions)
    (64, 32, 8, [5, 1000, 33, 64]),             # 1B-shaped
    (128, 8, 8, [2048]),                        # no GQA, batch 1
    (128, 16, 2, [129, 1, 1500]),               # group of 8
    (64, 4, 2, [3] * 33 + [700]),               # many short sequences
    (128, 20, 4, [1, 400, 2100]),               # group of 5: Qwen2.5-32B shape at TP=2
    (128, 28, 4, [77, 3000]),                   # group of 7: Qwen2.5-7B shape
    (128, 12, 4, [513]),                        # group of 3
    (128, 24, 4, [64, 1025]),                   # group of 6
])
def test_paged_decode_matches_sdpa_on_gathered_kv(D, nh, nkv, lens):
    B = len(lens)
    kc, vc, tables, L = make_paged(B, lens, nkv, D, 16, seed=len(lens) + D)
    q_all = torch.randn(B, nh + 2 * nkv, D, device="cuda").bfloat16()  # q as a strided view, as in the engine
    q = q_all[:, :nh]
    scale = D ** -0.5
    ref = paged_attention.reference(q, kc, vc, tables, L, scale)
    for P in (None, 64, 512):
        out = paged_attention.paged_decode(q, kc, vc, tables, L, scale, partition=P,
                                           out=nan_like((B, nh, D), torch.bfloat16))
        e = rel(out, ref)
        print(D, nh, nkv, P, e)
        assert e < BF16_TOL


@pytest.mark.parametrize("lens,split", [([5, 1000, 33, 64], True), ([300] * 40, False)])
def test_prepared_decode_launch_matches_sdpa_on_every_layer_cache(lens, split):
    """Set up once, launched per layer with only the cache pointers swapped (the eager step's attention):
    each call attends over the cache it is given (two caches, so a stale pointer would show), with and
    without the partition scratch it holds across calls."""
    import numpy as np
    B, D, nh, nkv = len(lens), 64, 32, 8
    kc0, vc0, tables, L = make_paged(B, lens, nkv, D, 16, seed=1)
    caches = [(kc0, vc0), (-0.7 * kc0, 1.3 * vc0 - 0.2)]  # same tables, other values (NaN slots stay NaN)
    q = torch.randn(B, nh, D, device="cuda").bfloat16()
    out = nan_like((B, nh, D), torch.bfloat16)
    run = paged_attention.DecodeLaunch(q, kc0, tables, L, D ** -0.5, out)
    nparts = run.nparts
    assert (nparts > 1) == split
    # tensors of the scratch's sizes made now would take its blocks, were it freed: the launches must not touch them
    junk = [nan_like((B, nh, nparts, D), torch.float32), nan_like((B, nh, nparts), torch.float32),
            nan_like((B, nh, nparts), torch.float32)]
    for kc, vc in caches:
        run(np.uint64(kc.data_ptr()), np.uint64(vc.data_ptr()))
        assert rel(out, paged_attention.reference(q, kc, vc, tables, L, D ** -0.5)) < BF16_TOL
    assert all(torch.isnan(j).all() for j in junk)


@pytest.mark.parametrize("D,nh,nkv,lens", [(128, 32, 8, [1, 16, 300, 4096]), (64, 32, 8, [5, 1000, 33]),
                                       (128, 20, 4, [400, 2100])])
def test_paged_decode_reads_an_fp8_cache(D, nh, nkv, lens):
    """An FP8 e4m3 cache (scale 1), read by the kernel: against SDPA over the same cache widened to bf16
    (exact: every e4m3 value is a bf16 value), at every partitioning."""
    B = len(lens)
    kc, vc, tables, L = make_paged(B, lens, nkv, D, 16, seed=len(lens) + D)
    kc8, vc8 = kc.to(torch.float8_e4m3fn), vc.to(torch.float8_e4m3fn)
    q = torch.randn(B, nh, D, device="cuda").bfloat16()
    ref = paged_attention.reference(q, kc8.bfloat16(), vc8.bfloat16(), tables, L, D ** -0.5)
    for P in (None, 64, 512):
        out = paged_attention.paged_decode(q, kc8, vc8, tables, L, D ** -0.5, partition=P,
                                           out=nan_like((B, nh, D), torch.bfloat16))
        assert rel(out, ref) < BF16_TOL


def test_paged_decode_block_size_32():
    kc, vc, tables, L = make_paged(3, [31, 32, 95], 8, 128, 32, seed=5)
    q = torch.randn(3, 32, 128, device="cuda").bfloat16()
    out = paged_attention.paged_decode(q, kc, vc, tables, L, 0.1, out=nan_like((3, 32, 128), torch.bfloat16))
    assert rel(out, paged_attention.reference(q, kc, vc, tables, L, 0.1)) < BF16_TOL


@pytest.mark.parametrize("N,K", [(3072, 2048), (4096, 14336), (14336, 4096), (1000, 384)])
@pytest.mark.parametrize("M", [1, 3, 8, 17, 32])
def test_w8a16_matches_float64_dequantized_matmul(M, N, K):
    from engine.quant import quantize_int8
    g = torch.Generator(device="cuda").manual_seed(M * 7 + N)
    w = (torch.randn(N, K, device="cuda", generator=g) * 0.02).bfloat16()
    q, s = quantize_int8(w)
    x = torch.randn(M, K, device="cuda", generator=g).bfloat16()
    out = w8a16.w8a16(x, q, s, out=nan_like((M, N), torch.bfloat16))
    assert rel(out, w8a16.reference(x, q, s)) < BF16_TOL


def test_w8a16_rejects_what_it_cannot_do():
    q = torch.zeros(64, 256, dtype=torch.int8, device="cuda")
    s = torch.ones(64, 2, dtype=torch.bfloat16, device="cuda")
    with pytest.raises(ValueError, match="at most 32 rows"):
        w8a16.w8a16(torch.zeros(33, 256, dtype=torch.bfloat16, device="cuda"), q, s)
    with pytest.raises(ValueError, match="features"):
        w8a16.w8a16(torch.zeros(1, 128, dtype=torch.bfloat16, device="cuda"), q, s)


@pytest.mark.parametrize("T,H", [(1, 4096), (7, 2048), (64, 8192), (3, 1000 * 8 // 8 * 1)])
def test_add_rmsnorm_matches_float64_and_the_pytorch_path(T, H):
    from engine.model import _add_rms, _rms
    g = torch.Generator(device="cuda").manual_seed(T + H)
    x, r = (torch.randn(T, H, device="cuda", generator=g).bfloat16() for _ in range(2))
    w = (1 + 0.1 * torch.randn(H, device="cuda", generator=g)).bfloat16()
    out, res = fused.add_rmsnorm(x, r, w, 1e-5, out=nan_like((T, H), torch.bfloat16))
    s = x.double() + r.double()
    ref = w.double() * s / torch.sqrt((s * s).mean(-1, keepdim=True) + 1e-5)
    assert rel(out, ref) < BF16_TOL
    po, pr = _add_rms(x, r, w, 1e-5)
    assert torch.equal(res, pr)
    assert (out != po).float().mean().item() < 1e-3  # same roundings as the PyTorch path
    plain = fused.add_rmsnorm(x, None, w, 1e-5)[0]
    assert (plain != _rms(x, w, 1e-5)).float().mean().item() < 1e-3


def test_silu_mul_matches_float64():
    T, F = 5, 14336
    gu = torch.randn(T, 2 * F, device="cuda").bfloat16() * 3
    out = fused.silu_mul(gu, F, out=nan_like((T, F), torch.bfloat16))
    g, u = gu.double().split(F, -1)
    assert rel(out, g * torch.sigmoid(g) * u) < BF16_TOL
    from engine.model import _silu_mul
    assert (out != _silu_mul(gu, F)).float().mean().item() < 1e-3


@pytest.mark.parametrize("T", [1, 6, 70])  # several blocks per token below 64 tokens, one from 64 on
def test_rope_cache_rotates_and_writes_slots_like_the_pytorch_path(T):
    from engine.model import _rope, rope_inv_freq
    nh, nkv, D, slots_total = 32, 8, 128, 128
    qkv = torch.randn(T, (nh + 2 * nkv) * D, device="cuda").bfloat16()
    pos = torch.randint(0, 8000, (T,), generator=torch.Generator().manual_seed(T)).cuda()
    f = pos.float()[:, None] * rope_inv_freq(D, 500000.0, None).cuda()[None, :]
    emb = torch.cat((f, f), -1)
    cos, sin = emb.cos().bfloat16()[:, None, :], emb.sin().bfloat16()[:, None, :]
    slots = torch.randperm(slots_total, generator=torch.Generator().manual_seed(T))[:T].cuda()
    kc = torch.full((slots_total, nkv, D), float("nan"), dtype=torch.bfloat16, device="cuda")
    vc = kc.clone()
    q = fused.rope_cache(qkv, cos, sin, slots, kc, vc, nh, nkv)
    qk = _rope(qkv[:, :(nh + nkv) * D].view(T, nh + nkv, D), cos, sin)
    assert torch.equal(q, qk[:, :nh])
    assert torch.equal(kc[slots], qk[:, nh:])
    assert torch.equal(vc[slots], qkv[:, (nh + nkv) * D:].view(T, nkv, D))
    untouched = torch.ones(slots_total, dtype=torch.bool)
    untouched[slots.cpu()] = False
    assert torch.isnan(kc[untouched.cuda()]).all()
    if fused.fp8_writes():  # an FP8 cache: the same bf16 values, narrowed as PyTorch narrows them (nearest even)
        k8 = torch.zeros((slots_total, nkv, D), dtype=torch.float8_e4m3fn, device="cuda")
        v8 = torch.zeros_like(k8)
        assert torch.equal(fused.rope_cache(qkv, cos, sin, slots, k8, v8, nh, nkv), q)
        u8 = torch.uint8
        assert torch.equal(k8.view(u8)[slots], qk[:, nh:].to(torch.float8_e4m3fn).view(u8))
        assert torch.equal(v8.view(u8)[slots], qkv[:, (nh + nkv) * D:].view(T, nkv, D).to(torch.float8_e4m3fn).view(u8))
        assert not k8.view(u8)[untouched.cuda()].any()


def _forced_logits(llm, prompts, steps, monkeypatch):
    """Run generation with the tokens fixed in advance (teacher forcing), so paths that round differently
    still see the same inputs; return every sampled row's logits, in order."""
    import engine.llm as engine_llm
    rows = {}

    def forced(logits, seqs, generators):
        out = []
        for row, sq in zip(logits, seqs):
            key = (len(sq.prompt), len(sq.output))  # prompt lengths are distinct: a run-independent key
            rows[key] = row.float().cpu()
            out.append((7919 * key[0] + 104729 * key[1]) % 128000)
        return out

    monkeypatch.setattr(engine_llm, "sample", forced)
    from engine.sequence import SamplingParams
    llm.generate(prompts, SamplingParams(max_tokens=steps))
    return torch.stack([rows[k] for k in sorted(rows)])


@pytest.mark.parametrize("quant", [None, "int8"])
def test_engine_with_kernels_logits_as_close_to_fp32_as_the_pytorch_path(quant, monkeypatch):
    """1B-shaped model, prefill + 12 decode steps (CUDA graphs, mixed prefill/decode steps), tokens forced.
    Stated tolerance: the kernel path's bf16 logits err against an fp32 run of the same weights no more than
    1.2x the PyTorch path's bf16 logits do (a broken kernel errs by ~100%)."""
    import copy

    from contract.catalog import MODELS
    from engine.llm import LLM, EngineConfig
    from engine.weights import build_model
    m = build_model(MODELS["llama-3.2-1b"], seed=5, dtype=torch.bfloat16, device="cuda")
    if quant:
        from engine.quant import dequantize_int8, quantize_model
        quantize_model(m)
        ref = copy.deepcopy(m)  # fp32 reference of the quantized weights
        for layer in ref.layers:
            for parent, name in ((layer.attn, "qkv"), (layer.attn, "o"), (layer.mlp, "gate_up"), (layer.mlp, "down")):
                q = getattr(parent, name)
                lin = torch.nn.Linear(q.in_features, q.out_features, bias=False, device="cuda")
                lin.weight.data = dequantize_int8(q.qweight, q.scales).float()
                setattr(parent, name, lin)
        ref = ref.float()
    else:
        ref = copy.deepcopy(m).float()
    g = torch.Generator().manual_seed(3)
    prompts = [torch.randint(0, 128256, (n,), generator=g).tolist() for n in (5, 70, 300, 17, 600)]
    kw = dict(model="llama-3.2-1b", num_blocks=2048, max_num_batched_tokens=256)
    l32 = _forced_logits(LLM(EngineConfig(dtype="float32", **kw), model=ref), prompts, 12, monkeypatch)
    del ref
    l16 = _forced_logits(LLM(EngineConfig(**kw), model=m), prompts, 12, monkeypatch)
    fast = LLM(EngineConfig(kernels=True, **kw), model=m)
    assert fast.kernels_active and m.backend is not None
    lk = _forced_logits(fast, prompts, 12, monkeypatch)
    assert fast.runner.graphs
    from engine.kernel_hooks import detach
    detach(m)
    e16 = ((l16 - l32).norm() / l32.norm()).item()
    ek = ((lk - l32).norm() / l32.norm()).item()
    print(f"logits vs fp32: PyTorch path {e16:.3e}, kernels {ek:.3e}")
    assert ek <= 1.2 * e16 + 1e-3


def test_fp8_kv_engine_reads_its_cache_with_the_kernel_as_closely_as_the_pytorch_path(monkeypatch):
    """kv_cache_dtype fp8 with kernels on: the paged-decode kernel reads the FP8 cache (no fallback recorded),
    decode and mixed steps run in CUDA graphs, and the forced-token logits err against fp32 no more than 1.2x
    those of the PyTorch path over the same FP8 cache (an unread or misread cache errs by ~100%)."""
    import copy

    from contract.catalog import MODELS
    from engine.llm import LLM, EngineConfig
    from engine.weights import build_model
    m = build_model(MODELS["llama-3.2-1b"], seed=5, dtype=torch.bfloat16, device="cuda")
    ref = copy.deepcopy(m).float()
    g = torch.Generator().manual_seed(4)
    prompts = [torch.randint(0, 128256, (n,), generator=g).tolist() for n in (5, 70, 300, 17, 600)]
    kw = dict(model="llama-3.2-1b", num_blocks=2048, max_num_batched_tokens=256)
    l32 = _forced_logits(LLM(EngineConfig(dtype="float32", **kw), model=ref), prompts, 12, monkeypatch)
    del ref
    l8 = _forced_logits(LLM(EngineConfig(kv_cache_dtype="fp8", **kw), model=m), prompts, 12, monkeypatch)
    fast = LLM(EngineConfig(kernels=True, kv_cache_dtype="fp8", **kw), model=m)
    lk = _forced_logits(fast, prompts, 12, monkeypatch)
    assert fast.kernel_fallbacks == [] and fast.runner.graphs
    from engine.kernel_hooks import detach
    detach(m)
    e8 = ((l8 - l32).norm() / l32.norm()).item()
    ek = ((lk - l32).norm() / l32.norm()).item()
    print(f"fp8-KV logits vs fp32: PyTorch path {e8:.3e}, kernels {ek:.3e}")
    assert ek <= 1.2 * e8 + 1e-3


@pytest.mark.parametrize("N,K", [(6144, 4096), (4096, 4096), (4096, 14336), (3072, 2048), (100, 264)])
def test_gemv_matches_float64_matmul(N, K):
    from kernels import gemv
    g = torch.Generator(device="cuda").manual_seed(N + K)
    w = (torch.randn(N, K, device="cuda", generator=g) * 0.02).bfloat16()
    x = torch.randn(1, K, device="cuda", generator=g).bfloat16()
    for cfg in (None,) + gemv.SWEEP:
        out = gemv.gemv(x, w, out=nan_like((1, N), torch.bfloat16), config=cfg)
        assert rel(out, gemv.reference(x, w)) < BF16_TOL, cfg


@pytest.mark.parametrize("N,K", [(6144, 4096), (28672, 4096), (3072, 2048), (100, 8192), (40, 264)])
def test_norm_gemv_is_bit_equal_to_add_rmsnorm_then_gemv(N, K):
    """The fused add + RMSNorm + GEMV gives the two-launch path's bits, for every config, with and without a
    residual, and block 0 writes the summed residual."""
    from kernels import gemv
    g = torch.Generator(device="cuda").manual_seed(N * 7 + K)
    w = (torch.randn(N, K, device="cuda", generator=g) * 0.02).bfloat16()
    x, res = (torch.randn(1, K, device="cuda", generator=g).bfloat16() for _ in range(2))
    nw = (1 + 0.1 * torch.randn(K, device="cuda", generator=g)).bfloat16()
    for r in (res, None):
        h, r_ref = fused.add_rmsnorm(x, r, nw, 1e-5)
        for cfg in (None,) + gemv.SWEEP:
            want = gemv.gemv(h, w, config=cfg)
            y, r_out = gemv.norm_gemv(x, r, nw, 1e-5, w, config=cfg)
            assert torch.equal(y, want), (cfg, r is None)
            assert torch.equal(r_out, r_ref if r is not None else x)
        assert rel(y, gemv.reference(h, w)) < BF16_TOL


def test_decode_graph_fuses_the_norms_into_the_projections(monkeypatch):
    """Batch-1 decode graphs replace each layer's two norm launches with norm-GEMV launches; tokens forced,
    their logits err against fp32 no more than 1.2x the PyTorch path's (as the test above states)."""
    import copy

    from contract.catalog import MODELS
    from engine.llm import LLM, EngineConfig
    from engine.weights import build_model
    from kernels import gemv
    m = build_model(MODELS["llama-3.2-1b"], seed=11, dtype=torch.bfloat16, device="cuda")
    prompts = [torch.randint(0, 128256, (150,), generator=torch.Generator().manual_seed(3)).tolist()]
    kw = dict(model="llama-3.2-1b", num_blocks=512)
    ref = copy.deepcopy(m).float()
    l32 = _forced_logits(LLM(EngineConfig(dtype="float32", **kw), model=ref), prompts, 10, monkeypatch)
    del ref
    l16 = _forced_logits(LLM(EngineConfig(**kw), model=m), prompts, 10, monkeypatch)
    calls = []
    real = gemv.norm_gemv
    monkeypatch.setattr(gemv, "norm_gemv", lambda *a, **k: calls.append(tuple(a[4].shape)) or real(*a, **k))
    try:
        lk = _forced_logits(LLM(EngineConfig(kernels=True, **kw), model=m), prompts, 10, monkeypatch)
    finally:
        from engine.kernel_hooks import detach
        detach(m)
    L = len(m.layers)
    assert calls and len(calls) % (2 * L) == 0, "a norm was not fused into its projection while capturing"
    assert set(calls) == {tuple(m.layers[0].attn.qkv.weight.shape), tuple(m.layers[0].mlp.gate_up.weight.shape)}
    e16 = ((l16 - l32).norm() / l32.norm()).item()
    ek = ((lk - l32).norm() / l32.norm()).item()
    print(f"batch-1 logits vs fp32: PyTorch path {e16:.3e}, fused kernels {ek:.3e}")
    assert ek <= 1.2 * e16 + 1e-3


def test_gemv_hook_runs_only_for_one_row_inside_capture():
    from engine.kernel_hooks import gemv_kernel
    from engine.model import Linear
    from kernels import gemv
    gemv.prepare()
    lin = Linear(256, 512, bias=False).cuda().bfloat16()
    lin.kernel = gemv_kernel
    x = torch.randn(1, 256, device="cuda").bfloat16()
    assert gemv_kernel(x, lin.weight) is None  # eager: cuBLAS
    assert gemv_kernel(torch.randn(2, 256, device="cuda").bfloat16(), lin.weight) is None
    out = torch.empty(1, 512, device="cuda", dtype=torch.bfloat16)
    graph = torch.cuda.CUDAGraph()
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        lin(x)
    torch.cuda.synchronize()
    with torch.cuda.graph(graph):
        out.copy_(lin(x))
    graph.replay()
    torch.cuda.synchronize()
    assert rel(out, x.double() @ lin.weight.double().T) < BF16_TOL
