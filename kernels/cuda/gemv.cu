// Batch-1 bf16 GEMV: y[N] = W[N, K] x[K], for decode at batch 1 where cuBLAS picks split-K kernels (plus a
// reduction launch) or under-fills the GPU on the smaller layers. Memory-bound: every weight byte is read
// once, 16 bytes per lane per load, CH loads per row in flight; a warp owns R output rows and sums its lanes
// with shuffles -- no second kernel. x (K bf16, a few KB) is read through L1/L2 by every warp.
template <int R, int CH>
__global__ void __launch_bounds__(256) gemv_bf16(
    const bf16_t* __restrict__ x, const bf16_t* __restrict__ W, bf16_t* __restrict__ y, int N, int K)
{
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int n0 = (blockIdx.x * 8 + warp) * R;
    if (n0 >= N) return;
    float acc[R];
#pragma unroll
    for (int r = 0; r < R; ++r) acc[r] = 0.f;
    for (int kb = lane * 8; kb < K; kb += 256 * CH) {
        uint4 wv[CH][R];
#pragma unroll
        for (int c = 0; c < CH; ++c) {
            const int k = kb + 256 * c;
#pragma unroll
            for (int r = 0; r < R; ++r)
                wv[c][r] = (k < K && n0 + r < N)
                    ? __ldg(reinterpret_cast<const uint4*>(W + (size_t)(n0 + r) * K + k))
                    : make_uint4(0u, 0u, 0u, 0u);
        }
#pragma unroll
        for (int c = 0; c < CH; ++c) {
            const int k = kb + 256 * c;
            if (k >= K) break;
            float xf[8], wf[8];
            unpack8(*reinterpret_cast<const uint4*>(x + k), xf);
#pragma unroll
            for (int r = 0; r < R; ++r) {
                unpack8(wv[c][r], wf);
#pragma unroll
                for (int i = 0; i < 8; ++i) acc[r] += wf[i] * xf[i];
            }
        }
    }
#pragma unroll
    for (int r = 0; r < R; ++r) {
        const float v = warp_sum(acc[r]);
        if (lane == 0 && n0 + r < N) y[n0 + r] = f2bf(v);
    }
}
