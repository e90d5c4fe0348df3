// Fused elementwise kernels for the decoder layer, bit-compatible with the PyTorch path's rounding:
// every intermediate the PyTorch path rounds to bf16 is rounded here too.

// out = w * rmsnorm(x + res) (float32 statistics), res_out = x + res. res may be null (plain RMSNorm).
// One block per row; H a multiple of 8, at most 256 * 8 * 4 = 8192.
extern "C" __global__ void __launch_bounds__(256) add_rmsnorm(
    const bf16_t* __restrict__ x, const bf16_t* __restrict__ res, const bf16_t* __restrict__ w,
    bf16_t* __restrict__ out, bf16_t* __restrict__ res_out, int H, float eps)
{
    __shared__ float red[8];
    const size_t o = (size_t)blockIdx.x * H;
    block_add_rmsnorm(x + o, res != nullptr ? res + o : nullptr, w, eps, H, out + o,
                      res != nullptr ? res_out + o : nullptr, red);
}

// out[t, :F] = silu(gu[t, :F]) * gu[t, F:], F a multiple of 8
extern "C" __global__ void silu_mul(const bf16_t* __restrict__ gu, bf16_t* __restrict__ out, int T, int F)
{
    const int fv = F / 8;
    const size_t n = (size_t)T * fv;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t t = i / fv, c = i % fv;
        float g[8], u[8], o[8];
        unpack8(reinterpret_cast<const uint4*>(gu + t * 2 * F)[c], g);
        unpack8(reinterpret_cast<const uint4*>(gu + t * 2 * F + F)[c], u);
#pragma unroll
        for (int j = 0; j < 8; ++j) o[j] = bf2f(f2bf(g[j] / (1.0f + expf(-g[j])))) * u[j];
        reinterpret_cast<uint4*>(out + t * F)[c] = pack8(o);
    }
}

// a float as FP8 e4m3 (round to nearest even, saturating at +-448, as an FP8 cache stores it); sm_89 and later
// only (the engine launches the FP8 variant below only there)
__device__ __forceinline__ unsigned char f2e4m3(float x) {
#if __CUDA_ARCH__ >= 890
    unsigned short r;
    asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(r) : "f"(0.f), "f"(x));
    return (unsigned char)(r & 0xffu);
#else
    return 0;
#endif
}

template <bool FP8> struct CacheElt;
template <> struct CacheElt<false> {
    typedef bf16_t t;
    __device__ __forceinline__ static t from(bf16_t v) { return v; }
};
template <> struct CacheElt<true> {  // the bf16 value (what the PyTorch path writes first), then narrowed
    typedef unsigned char t;
    __device__ __forceinline__ static t from(bf16_t v) { return f2e4m3(bf2f(v)); }
};

// RoPE on q and k (rotate-half form, cos/sin [T, D]) and the new K/V written into their cache slots.
// qkv [T, (nh + 2 nkv) D]; q_out [T, nh, D]; caches [slots, nkv, D], bf16 or FP8 e4m3.
template <bool FP8>
__device__ __forceinline__ void rope_cache_body(
    const bf16_t* __restrict__ qkv, const bf16_t* __restrict__ cosb, const bf16_t* __restrict__ sinb,
    const i64* __restrict__ slots, bf16_t* __restrict__ q_out, typename CacheElt<FP8>::t* __restrict__ kc,
    typename CacheElt<FP8>::t* __restrict__ vc, int nh, int nkv, int D)
{
    typedef CacheElt<FP8> E;
    // grid (tokens, Y): Y blocks share one token's heads, so a batch-1 step is not one block's work
    const int t = blockIdx.x, half = D / 2;
    const int i0 = blockIdx.y * blockDim.x + threadIdx.x, stride = gridDim.y * blockDim.x;
    const bf16_t* row = qkv + (size_t)t * (nh + 2 * nkv) * D;
    const i64 slot = slots[t];
    for (int i = i0; i < (nh + nkv) * half; i += stride) {
        int head = i / half, j = i % half;
        float x1 = bf2f(row[head * D + j]), x2 = bf2f(row[head * D + j + half]);
        float c1 = bf2f(cosb[(size_t)t * D + j]), c2 = bf2f(cosb[(size_t)t * D + j + half]);
        float s1 = bf2f(sinb[(size_t)t * D + j]), s2 = bf2f(sinb[(size_t)t * D + j + half]);
        bf16_t o1 = f2bf(bf2f(f2bf(x1 * c1)) + bf2f(f2bf(-x2 * s1)));
        bf16_t o2 = f2bf(bf2f(f2bf(x2 * c2)) + bf2f(f2bf(x1 * s2)));
        if (head < nh) {
            bf16_t* dst = q_out + ((size_t)t * nh + head) * D;
            dst[j] = o1;
            dst[j + half] = o2;
        } else {
            typename E::t* dst = kc + ((size_t)slot * nkv + (head - nh)) * D;
            dst[j] = E::from(o1);
            dst[j + half] = E::from(o2);
        }
    }
    const bf16_t* v = row + (size_t)(nh + nkv) * D;
    for (int i = i0; i < nkv * D; i += stride) vc[(size_t)slot * nkv * D + i] = E::from(v[i]);
}

extern "C" __global__ void rope_cache(
    const bf16_t* __restrict__ qkv, const bf16_t* __restrict__ cosb, const bf16_t* __restrict__ sinb,
    const i64* __restrict__ slots, bf16_t* __restrict__ q_out, bf16_t* __restrict__ kc, bf16_t* __restrict__ vc,
    int nh, int nkv, int D)
{
    rope_cache_body<false>(qkv, cosb, sinb, slots, q_out, kc, vc, nh, nkv, D);
}

extern "C" __global__ void rope_cache_fp8(
    const bf16_t* __restrict__ qkv, const bf16_t* __restrict__ cosb, const bf16_t* __restrict__ sinb,
    const i64* __restrict__ slots, bf16_t* __restrict__ q_out, unsigned char* __restrict__ kc,
    unsigned char* __restrict__ vc, int nh, int nkv, int D)
{
    rope_cache_body<true>(qkv, cosb, sinb, slots, q_out, kc, vc, nh, nkv, D);
}
