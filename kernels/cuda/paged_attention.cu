// Paged-attention decode: one query token per sequence, K/V read through the block table.
// Caches are [num_blocks, block_size, nkv, D] (the engine's layout), bf16 (KVB = 2 bytes) or FP8 e4m3 with
// scale 1 (KVB = 1: half the bytes read, which is the point of an FP8 cache in a bandwidth-bound decode);
// block_size a power of two.
// Grid (partition, kv head, seq): a block reads one kv head's K and V over one partition of the context
// once, for all G query heads of that kv head (GQA). LPT = D/8 lanes share a token, 16 bytes each; a
// block has SLOTS such token slots, each running its own online softmax over every SLOTS-th token, with
// the K and V of U tokens loaded before the first use (8 loads of 16 bytes in flight per thread). Slots are
// merged in shared memory, partitions by paged_combine (max-rescaled sums).
template <int KVB> struct KvRow;  // one lane's 8 elements of a K or V row: how they are loaded and widened
template <> struct KvRow<2> {
    typedef uint4 raw;
    __device__ __forceinline__ static void unpack(const raw& r, float* f) { unpack8(r, f); }
};
template <> struct KvRow<1> {
    typedef uint2 raw;
    __device__ __forceinline__ static void unpack(const raw& r, float* f) { unpack8_e4m3(r, f); }
};

template <int D, int G, int KVB>
__global__ void __launch_bounds__(128) paged_decode(
    const bf16_t* __restrict__ q, int q_stride, const unsigned char* __restrict__ kc,
    const unsigned char* __restrict__ vc,
    const i64* __restrict__ tables, int width, const i64* __restrict__ lens, int log2_bs, int nkv,
    bf16_t* __restrict__ out, float* __restrict__ part_o, float* __restrict__ part_m, float* __restrict__ part_l,
    int P, int nparts, float scale)
{
    // an FP8 row is 8 bytes a lane: twice the tokens in flight keep as many bytes loading as bf16's 16
    constexpr int LPT = D / 8, TPW = 32 / LPT, SLOTS = 4 * TPW, U = (KVB == 1 && G <= 4) ? 8 : 4;
    constexpr float LOG2E = 1.4426950408889634f;
    __shared__ float sm_m[SLOTS][G], sm_l[SLOTS][G];
    __shared__ float4 sm_acc4[SLOTS * G * D / 4];
    float* sm_acc = reinterpret_cast<float*>(sm_acc4);
    const int part = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int slot = warp * TPW + lane / LPT, sub = lane % LPT;
    const int len = (int)lens[b];
    const int t0 = part * P, t1 = min(len, t0 + P);
    const int nh = nkv * G, bmask = (1 << log2_bs) - 1;
    if (t0 >= t1) {  // this partition is past the sequence's end (uniform over the block)
        if (nparts > 1 && tid < G) {
            size_t i = ((size_t)b * nh + h * G + tid) * nparts + part;
            part_m[i] = -INFINITY;
            part_l[i] = 0.f;
        }
        return;
    }
    float qr[G][8], m[G], l[G], acc[G][8];
#pragma unroll
    for (int g = 0; g < G; ++g) {
        uint4 raw = *reinterpret_cast<const uint4*>(q + (size_t)b * q_stride + (h * G + g) * D + sub * 8);
        unpack8(raw, qr[g]);
#pragma unroll
        for (int i = 0; i < 8; ++i) { qr[g][i] *= scale * LOG2E; acc[g][i] = 0.f; }  // scores in log2 units
        m[g] = -INFINITY;
        l[g] = 0.f;
    }
    const i64* table = tables + (size_t)b * width;
    typedef typename KvRow<KVB>::raw Raw;
    const size_t tok = (size_t)nkv * D;  // elements from one cache slot to the next
    const size_t hoff = (size_t)h * D + sub * 8;

    // one pass: each slot keeps its own running max / sum / accumulator over its tokens (online softmax);
    // K and V of U tokens are loaded together before the first use
    // the loop bound is the warp's first slot (warp-uniform: the shuffles below need every lane)
    for (int wbase = t0 + warp * TPW; wbase < t1; wbase += SLOTS * U) {
        const int base = wbase + lane / LPT;
        Raw kr[U], vr[U];
#pragma unroll
        for (int u = 0; u < U; ++u) {
            int t = base + u * SLOTS;
            kr[u] = vr[u] = Raw();
            if (t < t1) {
                size_t off = (((size_t)table[t >> log2_bs] << log2_bs | (t & bmask)) * tok + hoff) * KVB;
                kr[u] = *reinterpret_cast<const Raw*>(kc + off);
                vr[u] = *reinterpret_cast<const Raw*>(vc + off);
            }
        }
        float s[U][G];
#pragma unroll
        for (int u = 0; u < U; ++u) {
            float kf[8];
            KvRow<KVB>::unpack(kr[u], kf);
#pragma unroll
            for (int g = 0; g < G; ++g) {
                float d = 0.f;
#pragma unroll
                for (int i = 0; i < 8; ++i) d += qr[g][i] * kf[i];
#pragma unroll
                for (int o = LPT / 2; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
                s[u][g] = (base + u * SLOTS < t1) ? d : -INFINITY;
            }
        }
#pragma unroll
        for (int g = 0; g < G; ++g) {
            float mx = s[0][g];
#pragma unroll
            for (int u = 1; u < U; ++u) mx = fmaxf(mx, s[u][g]);
            const float mnew = fmaxf(m[g], mx);  // -inf only for a slot that has seen no token yet
            const float corr = mnew == -INFINITY ? 1.f : exp2f(m[g] - mnew);
            l[g] *= corr;
#pragma unroll
            for (int i = 0; i < 8; ++i) acc[g][i] *= corr;
            m[g] = mnew;
        }
#pragma unroll
        for (int u = 0; u < U; ++u) {
            float vf[8];
            KvRow<KVB>::unpack(vr[u], vf);
#pragma unroll
            for (int g = 0; g < G; ++g) {
                const float p = s[u][g] == -INFINITY ? 0.f : exp2f(s[u][g] - m[g]);
                l[g] += p;
#pragma unroll
                for (int i = 0; i < 8; ++i) acc[g][i] += p * vf[i];
            }
        }
    }
    // merge the slots
    if (sub == 0) {
#pragma unroll
        for (int g = 0; g < G; ++g) { sm_m[slot][g] = m[g]; sm_l[slot][g] = l[g]; }
    }
#pragma unroll
    for (int g = 0; g < G; ++g) {
        float4* dst = sm_acc4 + ((slot * G + g) * D + sub * 8) / 4;
        dst[0] = make_float4(acc[g][0], acc[g][1], acc[g][2], acc[g][3]);
        dst[1] = make_float4(acc[g][4], acc[g][5], acc[g][6], acc[g][7]);
    }
    __syncthreads();
    for (int o = tid; o < G * D; o += 128) {
        const int g = o / D, d = o % D;
        float M = -INFINITY;
#pragma unroll
        for (int sl = 0; sl < SLOTS; ++sl) M = fmaxf(M, sm_m[sl][g]);
        float num = 0.f, den = 0.f;
#pragma unroll
        for (int sl = 0; sl < SLOTS; ++sl) {
            const float w = exp2f(sm_m[sl][g] - M);  // 0 for a slot that saw no token
            num += w * sm_acc[(sl * G + g) * D + d];
            den += w * sm_l[sl][g];
        }
        const int head = h * G + g;
        if (nparts == 1) {
            out[((size_t)b * nh + head) * D + d] = f2bf(num / den);
        } else {
            size_t i = ((size_t)b * nh + head) * nparts + part;
            part_o[i * D + d] = num;
            if (d == 0) { part_m[i] = M; part_l[i] = den; }
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
        float w = exp2f(part_m[base + p] - m);  // maxima are in log2 units
        num += w * part_o[(base + p) * D + d];
        den += w * part_l[base + p];
    }
    out[((size_t)b * nh + head) * D + d] = f2bf(num / den);
}
