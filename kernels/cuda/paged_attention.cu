// Paged-attention decode: one query token per sequence, K/V read through the block table.
// Caches are [num_blocks, block_size, nkv, D] bf16 (the engine's layout). Grid (partition, kv head, seq):
// a block reads one kv head's K and V over one partition of the context once, for all G query heads of
// that kv head (GQA). LPT = D/8 lanes share a token, 16 bytes each; U tokens per slot are loaded before
// the first use so each thread keeps 4 loads in flight. Scores for the partition sit in shared memory;
// a partition's softmax is exact, and partitions are merged by paged_combine (max-rescaled sums).
template <int D, int G>
__global__ void __launch_bounds__(128) paged_decode(
    const bf16_t* __restrict__ q, int q_stride, const bf16_t* __restrict__ kc, const bf16_t* __restrict__ vc,
    const i64* __restrict__ tables, int width, const i64* __restrict__ lens, int bs, int nkv,
    bf16_t* __restrict__ out, float* __restrict__ part_o, float* __restrict__ part_m, float* __restrict__ part_l,
    int P, int nparts, float scale)
{
    constexpr int LPT = D / 8, TPW = 32 / LPT, SLOTS = 4 * TPW, U = 4;
    extern __shared__ float4 smem4[];
    float* sc = reinterpret_cast<float*>(smem4);  // [G][P] scores, then reused as [SLOTS][G][D] partial sums
    __shared__ float gm[G], gl[G];
    const int part = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int slot = warp * TPW + lane / LPT, sub = lane % LPT;
    const int len = (int)lens[b];
    const int t0 = part * P, t1 = min(len, t0 + P);
    const int nh = nkv * G;
    if (t0 >= t1) {  // this partition is past the sequence's end (uniform over the block)
        if (nparts > 1 && tid < G) {
            size_t i = ((size_t)b * nh + h * G + tid) * nparts + part;
            part_m[i] = -INFINITY;
            part_l[i] = 0.f;
        }
        return;
    }
    float qr[G][8];
#pragma unroll
    for (int g = 0; g < G; ++g) {
        uint4 raw = *reinterpret_cast<const uint4*>(q + (size_t)b * q_stride + (h * G + g) * D + sub * 8);
        unpack8(raw, qr[g]);
#pragma unroll
        for (int i = 0; i < 8; ++i) qr[g][i] *= scale;
    }
    const i64* table = tables + (size_t)b * width;
    const size_t tok = (size_t)nkv * D;  // elements from one cache slot to the next
    const size_t hoff = (size_t)h * D + sub * 8;

    for (int base = t0; base < t1; base += SLOTS * U) {
        uint4 kr[U];
#pragma unroll
        for (int u = 0; u < U; ++u) {
            int t = base + slot + u * SLOTS;
            kr[u] = make_uint4(0u, 0u, 0u, 0u);
            if (t < t1) kr[u] = *reinterpret_cast<const uint4*>(kc + ((size_t)table[t / bs] * bs + t % bs) * tok + hoff);
        }
#pragma unroll
        for (int u = 0; u < U; ++u) {
            int t = base + slot + u * SLOTS;
            float kf[8];
            unpack8(kr[u], kf);
#pragma unroll
            for (int g = 0; g < G; ++g) {
                float d = 0.f;
#pragma unroll
                for (int i = 0; i < 8; ++i) d += qr[g][i] * kf[i];
#pragma unroll
                for (int o = LPT / 2; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
                if (sub == 0 && t < t1) sc[g * P + t - t0] = d;
            }
        }
    }
    __syncthreads();
    const int n = t1 - t0;
    for (int g = warp; g < G; g += 4) {
        float m = -INFINITY;
        for (int i = lane; i < n; i += 32) m = fmaxf(m, sc[g * P + i]);
        m = warp_max(m);
        float s = 0.f;
        for (int i = lane; i < n; i += 32) {
            float p = __expf(sc[g * P + i] - m);
            sc[g * P + i] = p;
            s += p;
        }
        s = warp_sum(s);
        if (lane == 0) { gm[g] = m; gl[g] = s; }
    }
    __syncthreads();
    float acc[G][8];
#pragma unroll
    for (int g = 0; g < G; ++g)
#pragma unroll
        for (int i = 0; i < 8; ++i) acc[g][i] = 0.f;
    for (int base = t0; base < t1; base += SLOTS * U) {
        uint4 vr[U];
#pragma unroll
        for (int u = 0; u < U; ++u) {
            int t = base + slot + u * SLOTS;
            vr[u] = make_uint4(0u, 0u, 0u, 0u);
            if (t < t1) vr[u] = *reinterpret_cast<const uint4*>(vc + ((size_t)table[t / bs] * bs + t % bs) * tok + hoff);
        }
#pragma unroll
        for (int u = 0; u < U; ++u) {
            int t = base + slot + u * SLOTS;
            if (t < t1) {
                float vf[8];
                unpack8(vr[u], vf);
#pragma unroll
                for (int g = 0; g < G; ++g) {
                    float p = sc[g * P + t - t0];
#pragma unroll
                    for (int i = 0; i < 8; ++i) acc[g][i] += p * vf[i];
                }
            }
        }
    }
    __syncthreads();  // scores consumed: reuse the buffer for the partial sums
    float* red = sc;
#pragma unroll
    for (int g = 0; g < G; ++g)
#pragma unroll
        for (int i = 0; i < 8; ++i) red[(slot * G + g) * D + sub * 8 + i] = acc[g][i];
    __syncthreads();
    for (int o = tid; o < G * D; o += 128) {
        int g = o / D, d = o % D;
        float s = 0.f;
#pragma unroll
        for (int sl = 0; sl < SLOTS; ++sl) s += red[(sl * G + g) * D + d];
        int head = h * G + g;
        if (nparts == 1) {
            out[((size_t)b * nh + head) * D + d] = f2bf(s / gl[g]);
        } else {
            size_t i = ((size_t)b * nh + head) * nparts + part;
            part_o[i * D + d] = s;
            if (d == 0) { part_m[i] = gm[g]; part_l[i] = gl[g]; }
        }
    }
}

// grid (nh, B), block D: merge the partitions of one (sequence, head)
template <int D>
__global__ void paged_combine(const float* __restrict__ part_o, const float* __restrict__ part_m,
                              const float* __restrict__ part_l, const i64* __restrict__ lens,
                              bf16_t* __restrict__ out, int nh, int nparts, int P)
{
    const int head = blockIdx.x, b = blockIdx.y, d = threadIdx.x;
    const int np = min(nparts, (int)((lens[b] + P - 1) / P));
    const size_t base = ((size_t)b * nh + head) * nparts;
    float m = -INFINITY;
    for (int p = 0; p < np; ++p) m = fmaxf(m, part_m[base + p]);
    float num = 0.f, den = 0.f;
    for (int p = 0; p < np; ++p) {
        float w = __expf(part_m[base + p] - m);
        num += w * part_o[(base + p) * D + d];
        den += w * part_l[base + p];
    }
    out[((size_t)b * nh + head) * D + d] = f2bf(num / den);
}
