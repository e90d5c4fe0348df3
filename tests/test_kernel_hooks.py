"""The kernel hooks on the CPU: what the attention kernel cannot serve is recorded and said once, not hidden."""
import warnings

import pytest
import torch

from engine.kernel_hooks import Backend


def _q_cache(nh, nkv, hd=128, kv_dtype=torch.bfloat16):
    return torch.zeros(2, nh, hd, dtype=torch.bfloat16), torch.zeros(8, 16, nkv, hd).to(kv_dtype)


@pytest.mark.parametrize("nh,nkv,kv_dtype,says", [
    (32, 8, torch.float16, "KV cache torch.float16"),               # an fp16 cache: the kernel reads bf16 or FP8
    (36, 4, torch.bfloat16, "36 query heads over 4 KV heads"),      # a GQA group of 9: no kernel instance
])
def test_an_attention_fallback_is_recorded_and_warned_once(nh, nkv, kv_dtype, says):
    be = Backend()
    q, k = _q_cache(nh, nkv, kv_dtype=kv_dtype)
    with pytest.warns(RuntimeWarning, match="PyTorch path"):
        assert be.paged_decode(q, k, k, None, None, 1.0) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second time: recorded already, no second warning
        assert be.decode_launcher(q, k, None, None, 1.0, None) is None
    assert len(be.fallbacks) == 1 and says in next(iter(be.fallbacks))


def test_every_gqa_group_up_to_8_is_served_by_the_kernel():
    from kernels import paged_attention
    for g in range(1, 9):
        for kv_dtype in (torch.bfloat16, torch.float8_e4m3fn):  # an FP8 cache too: the kernel reads e4m3
            q, k = _q_cache(4 * g, 4, kv_dtype=kv_dtype)
            assert paged_attention.supports(q, k), (g, kv_dtype)


def test_an_fp8_cache_write_saturates_as_the_kernel_does():
    """The PyTorch path narrows K/V to e4m3 saturating at +-448, like the fused kernel: a large activation is stored
    as the format's largest value, never as NaN (which would poison every later attention over that slot)."""
    from engine.model import _write
    cache = torch.zeros(4, 2, dtype=torch.float8_e4m3fn)
    _write(cache, torch.tensor([1, 3]), torch.tensor([[1000.0, -0.5], [3.0, -1e4]], dtype=torch.bfloat16))
    assert cache.float().tolist() == [[0, 0], [448, -0.5], [0, 0], [3, -448]]
