// Batch-1 bf16 GEMV: y[N] = W[N, K] x[K], for decode at batch 1 where cuBLAS picks split-K kernels (plus a
// reduction launch) or under-fills the GPU on the smaller layers. Memory-bound: every weight byte is read
// once, 16 bytes per lane per load, CH loads per row in flight; a warp owns R output rows and sums its lanes
// with shuffles -- no second kernel. x (K bf16, a few KB) is read through L1/L2 by every warp.
// A warp's R weight rows, CH 16-byte loads each from column kb (lane-strided by 256): zeros past N and K, and
// for a warp with no rows (`live` false).
template <int R, int CH>
__device__ __forceinline__ void load_rows(const bf16_t* __restrict__ W, int n0, int N, int K, int kb, bool live,
                                          uint4 (&wv)[CH][R])
{
#pragma unroll
    for (int c = 0; c < CH; ++c) {
        const int k = kb + 256 * c;
#pragma unroll
        for (int r = 0; r < R; ++r)
            wv[c][r] = (live && k < K && n0 + r < N)
                ? __ldg(reinterpret_cast<const uint4*>(W + (size_t)(n0 + r) * K + k))
                : make_uint4(0u, 0u, 0u, 0u);
    }
}

// acc[r] += the loaded rows . xv over the same columns (xv: global or shared).
template <int R, int CH>
__device__ __forceinline__ void dot_rows(const bf16_t* xv, int kb, int K, const uint4 (&wv)[CH][R], float (&acc)[R])
{
#pragma unroll
    for (int c = 0; c < CH; ++c) {
        const int k = kb + 256 * c;
        if (k >= K) break;
        float xf[8], wf[8];
        unpack8(*reinterpret_cast<const uint4*>(xv + k), xf);
#pragma unroll
        for (int r = 0; r < R; ++r) {
            unpack8(wv[c][r], wf);
#pragma unroll
            for (int i = 0; i < 8; ++i) acc[r] += wf[i] * xf[i];
        }
    }
}

// Sum each row's lanes and write it.
template <int R>
__device__ __forceinline__ void store_rows(float (&acc)[R], bf16_t* __restrict__ y, int n0, int N)
{
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int r = 0; r < R; ++r) {
        const float v = warp_sum(acc[r]);
        if (lane == 0 && n0 + r < N) y[n0 + r] = f2bf(v);
    }
}

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
        load_rows<R, CH>(W, n0, N, K, kb, true, wv);
        dot_rows<R, CH>(x, kb, K, wv, acc);
    }
    store_rows<R>(acc, y, n0, N);
}

// The same GEMV with the decoder's add + RMSNorm in front of it (batch-1 decode: attention norm + QKV, MLP
// norm + gate/up): every block forms h = w * rmsnorm(x + res) in shared memory itself (K <= 8192: a few KB
// read from L2 per block) while its first weight loads are in flight, and block 0 writes res_out = x + res.
// Rounding as add_rmsnorm (fused.cu), so y is bit-equal to add_rmsnorm followed by gemv_bf16. This removes a
// launch and its gap per norm -- the step's small kernels cost more than their bytes.
template <int R, int CH>
__global__ void __launch_bounds__(256) norm_gemv_bf16(
    const bf16_t* __restrict__ x, const bf16_t* __restrict__ res, const bf16_t* __restrict__ nw, float eps,
    const bf16_t* __restrict__ W, bf16_t* __restrict__ y, bf16_t* __restrict__ res_out, int N, int K)
{
    extern __shared__ float4 smem4[];
    bf16_t* h = reinterpret_cast<bf16_t*>(smem4);  // K bf16
    __shared__ float red[8];
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int n0 = (blockIdx.x * 8 + warp) * R;
    const bool live = n0 < N;
    // first weight loads, issued before the norm so their latency overlaps it
    uint4 wv[CH][R];
    load_rows<R, CH>(W, n0, N, K, lane * 8, live, wv);
    // h = nw * rmsnorm(x + res); block 0 also writes res_out
    block_add_rmsnorm(x, res, nw, eps, K, h, blockIdx.x == 0 ? res_out : nullptr, red);
    __syncthreads();
    if (!live) return;
    float acc[R];
#pragma unroll
    for (int r = 0; r < R; ++r) acc[r] = 0.f;
    for (int kb = lane * 8;;) {
        dot_rows<R, CH>(h, kb, K, wv, acc);
        kb += 256 * CH;
        if (kb >= K) break;
        load_rows<R, CH>(W, n0, N, K, kb, true, wv);
    }
    store_rows<R>(acc, y, n0, N);
}
