// Shared helpers. No CUDA headers: bf16 is stored as unsigned short and converted with bit operations,
// so NVRTC needs no include path (cupy-cuda12x and cupy-cuda13x alike).
#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif
typedef unsigned short bf16_t;
typedef long long i64;

__device__ __forceinline__ float bf2f(bf16_t h) { return __uint_as_float(((unsigned)h) << 16); }

// round to nearest even, as PyTorch does; NaN stays NaN
__device__ __forceinline__ bf16_t f2bf(float f) {
    unsigned u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (bf16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (bf16_t)(u >> 16);
}

// 8 bf16 packed in a uint4 -> 8 floats
__device__ __forceinline__ void unpack8(const uint4 v, float* f) {
    const unsigned w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        f[2 * i] = __uint_as_float(w[i] << 16);
        f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
}

// one FP8 e4m3 (fn: no infinities) byte -> float, exactly: a normal value's exponent is rebiased (7 -> 127) in
// the float's bits; a subnormal one is m * 2^-9. NaN (0x7f / 0xff) is not produced by the engine's writes
// (they saturate) and reads as 480.
__device__ __forceinline__ float e4m3_to_f(unsigned b) {
    const unsigned em = b & 0x7fu, e = em >> 3;
    const float mag = e ? __uint_as_float((em << 20) + (120u << 23)) : (float)(em & 7u) * 0.001953125f;
    return (b & 0x80u) ? -mag : mag;
}

// two FP8 e4m3 (low byte first) -> two floats. From sm_89 on, the hardware conversion to f16x2 (exact: every
// e4m3 value is an f16 value) then f16 -> f32: three instructions for two elements, where the bit-level path
// above costs about ten per element -- enough to make an FP8 cache's decode compute-bound and slower than bf16's.
__device__ __forceinline__ void e4m3x2_to_f2(unsigned v, float& a, float& b) {
#if __CUDA_ARCH__ >= 890
    unsigned h2;
    unsigned short lo, hi;
    asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(h2) : "h"((unsigned short)v));
    asm("mov.b32 {%0, %1}, %2;" : "=h"(lo), "=h"(hi) : "r"(h2));
    asm("cvt.f32.f16 %0, %1;" : "=f"(a) : "h"(lo));
    asm("cvt.f32.f16 %0, %1;" : "=f"(b) : "h"(hi));
#else
    a = e4m3_to_f(v & 0xffu);
    b = e4m3_to_f((v >> 8) & 0xffu);
#endif
}

// 8 FP8 e4m3 packed in a uint2 -> 8 floats
__device__ __forceinline__ void unpack8_e4m3(const uint2 v, float* f) {
    const unsigned w[2] = {v.x, v.y};
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        e4m3x2_to_f2(w[i] & 0xffffu, f[4 * i], f[4 * i + 1]);
        e4m3x2_to_f2(w[i] >> 16, f[4 * i + 2], f[4 * i + 3]);
    }
}

__device__ __forceinline__ uint4 pack8(const float* f) {
    unsigned w[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) w[i] = (unsigned)f2bf(f[2 * i]) | ((unsigned)f2bf(f[2 * i + 1]) << 16);
    return make_uint4(w[0], w[1], w[2], w[3]);
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// out = w * rmsnorm(x + res) over one row of H features (a multiple of 8, at most 256 * 8 * 4 = 8192) by a
// 256-thread block, float32 statistics, rounding where the PyTorch path rounds to bf16. res may be null (plain
// RMSNorm); res_out = x + res is written when both are set. red: 8 floats of shared memory. add_rmsnorm
// (fused.cu) and norm_gemv_bf16 (gemv.cu) both call this, which is what keeps them bit-equal.
__device__ __forceinline__ void block_add_rmsnorm(
    const bf16_t* __restrict__ x, const bf16_t* __restrict__ res, const bf16_t* __restrict__ w, float eps, int H,
    bf16_t* __restrict__ out, bf16_t* __restrict__ res_out, float* red)
{
    const int tid = threadIdx.x, nv = H / 8;
    float v[4][8];
    float ss = 0.f;
#pragma unroll
    for (int c = 0; c < 4; ++c) {
        const int i = tid + c * 256;
        if (i < nv) {
            unpack8(reinterpret_cast<const uint4*>(x)[i], v[c]);
            if (res != nullptr) {
                float r[8];
                unpack8(reinterpret_cast<const uint4*>(res)[i], r);
#pragma unroll
                for (int j = 0; j < 8; ++j) v[c][j] = bf2f(f2bf(v[c][j] + r[j]));
                if (res_out != nullptr) reinterpret_cast<uint4*>(res_out)[i] = pack8(v[c]);
            }
#pragma unroll
            for (int j = 0; j < 8; ++j) ss += v[c][j] * v[c][j];
        }
    }
    ss = warp_sum(ss);
    if ((tid & 31) == 0) red[tid >> 5] = ss;
    __syncthreads();
    float tot = 0.f;
#pragma unroll
    for (int i = 0; i < 8; ++i) tot += red[i];
    const float rstd = rsqrtf(tot / H + eps);
#pragma unroll
    for (int c = 0; c < 4; ++c) {
        const int i = tid + c * 256;
        if (i < nv) {
            float wf[8], o[8];
            unpack8(reinterpret_cast<const uint4*>(w)[i], wf);
#pragma unroll
            for (int j = 0; j < 8; ++j) o[j] = bf2f(f2bf(v[c][j] * rstd)) * wf[j];
            reinterpret_cast<uint4*>(out)[i] = pack8(o);
        }
    }
}
