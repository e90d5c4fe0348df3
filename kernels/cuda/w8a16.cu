// W8A16 small-batch GEMM: y[M, N] = x[M, K] (bf16) @ dequant(W[N, K] int8, S[N, K/128] bf16)^T.
// Memory-bound for small M: each weight byte is read once. A warp owns R output rows; each lane reads
// 16 int8 weights (one 16-byte load, inside one 128-group so one scale) per chunk, two chunks in flight
// per row, and multiplies them against all M activation rows (read through L1, shared by the block's
// warps). R rows per warp (grid = N / (8 R)) and
// CH chunks in flight are template knobs, chosen per batch bucket from bench/kernels.py's sweep. Integer weights are summed against x first and scaled once per 16 -- exact in float32.
template <int MAXM, int R, int CH>
__global__ void __launch_bounds__(256) w8a16_gemm(
    const bf16_t* __restrict__ x, int M, int K, const signed char* __restrict__ W,
    const bf16_t* __restrict__ S, bf16_t* __restrict__ y, int N)
{
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int n0 = (blockIdx.x * 8 + warp) * R;
    if (n0 >= N) return;
    const int ngroups = K / 128;
    float acc[R][MAXM];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
        for (int m = 0; m < MAXM; ++m) acc[r][m] = 0.f;

    for (int kb = lane * 16; kb < K; kb += 512 * CH) {
        uint4 wv[CH][R];
        float s[CH][R];
#pragma unroll
        for (int c = 0; c < CH; ++c) {
            int k = kb + 512 * c;
#pragma unroll
            for (int r = 0; r < R; ++r) {
                wv[c][r] = make_uint4(0u, 0u, 0u, 0u);
                s[c][r] = 0.f;
                if (k < K && n0 + r < N) {
                    wv[c][r] = *reinterpret_cast<const uint4*>(W + (size_t)(n0 + r) * K + k);
                    s[c][r] = bf2f(S[(size_t)(n0 + r) * ngroups + k / 128]);
                }
            }
        }
#pragma unroll
        for (int c = 0; c < CH; ++c) {
            int k = kb + 512 * c;
            if (k >= K) break;
            float wf[R][16];
#pragma unroll
            for (int r = 0; r < R; ++r) {
                const unsigned w4[4] = {wv[c][r].x, wv[c][r].y, wv[c][r].z, wv[c][r].w};
#pragma unroll
                for (int i = 0; i < 16; ++i) wf[r][i] = (float)(signed char)((w4[i >> 2] >> (8 * (i & 3))) & 0xff);
            }
#pragma unroll
            for (int m = 0; m < MAXM; ++m) {
                if (m < M) {
                    const uint4* xp = reinterpret_cast<const uint4*>(x + (size_t)m * K + k);
                    float xf[16];
                    unpack8(xp[0], xf);
                    unpack8(xp[1], xf + 8);
#pragma unroll
                    for (int r = 0; r < R; ++r) {
                        float d = 0.f;
#pragma unroll
                        for (int i = 0; i < 16; ++i) d += wf[r][i] * xf[i];
                        acc[r][m] += d * s[c][r];
                    }
                }
            }
        }
    }
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
        for (int m = 0; m < MAXM; ++m) {
            if (m < M) {
                float v = warp_sum(acc[r][m]);
                if (lane == 0 && n0 + r < N) y[(size_t)m * N + n0 + r] = f2bf(v);
            }
        }
}
