// metal/_simdgroup_mma_emulated.h -- the warp instructions of _simdgroup_mma_cuda.h emulated on the CPU target, so
// that the tensor-core path of SIMD-group matrices (its layouts, the TF32 splits) runs in the test suite without a
// GPU: a test compiles the cpu backend with -DMG_EMULATE_TENSOR_CORES=1. Each instruction is a rendezvous of the
// SIMD-group's lanes (_simdgroup_cpu.h) that computes every lane's result from the PTX ISA's fragment layouts.
// TF32 operands lose their low 13 bits, as the tensor cores ignore them; sums are exact and rounded once to float
// (the hardware's are at least as coarse: the tests' tolerances hold for both).
#pragma once

namespace mg {
namespace sgm {

inline unsigned int shuffle_bits(unsigned int x, unsigned int lane) { return metal::simd_shuffle(x, ushort(lane)); }

inline float round_tf32(float x) {
    const unsigned int bits = detail::bit_cast<unsigned int>(x);
    if ((bits & 0x7f800000u) == 0x7f800000u) return x;  // infinity or NaN
    return detail::bit_cast<float>((bits + 0x1000u) & 0xffffe000u);
}

// Unused operand parts hold NaN, so that a test sees any of it reaching a result.
inline unsigned int unused_bits() { return 0x7fc07fc0u; }
inline float unused_float() { return detail::bit_cast<float>(0x7fc00000u); }
// The emulated ldmatrix reads any memory, at a whole address.
using shared_offset = unsigned long;
inline bool is_shared_address(const void*) { return true; }
inline shared_offset shared_address(const void* p) { return reinterpret_cast<shared_offset>(p); }

enum class mma_kind { f16, bf16, tf32, f16_k16, bf16_k16, transpose, load, load_trans };
struct mma_registers { unsigned int a[4], b[2]; float c[4]; };
struct mma_result { float d[4]; };

template <mma_kind Kind> struct mma_op {
    using arg = mma_registers;
    using result = mma_result;
    static constexpr bool k16 = Kind == mma_kind::f16_k16 || Kind == mma_kind::bf16_k16;
    // Element (row, k) of A, (k, column) of B, (row, column) of C, from the lanes that hold them.
    static float a(const arg* const* args, unsigned int row, unsigned int k) {
        if (Kind == mma_kind::tf32)
            return word(args[(row % 8) * 4 + k % 4]->a[(row / 8) + 2 * (k / 4)]);
        return half_of(args[(row % 8) * 4 + (k % 8) / 2]->a[row / 8 + 2 * (k / 8)], k % 2);
    }
    static float b(const arg* const* args, unsigned int k, unsigned int column) {
        if (Kind == mma_kind::tf32) return word(args[column * 4 + k % 4]->b[k / 4]);
        return half_of(args[column * 4 + (k % 8) / 2]->b[k / 8], k % 2);
    }
    static float word(unsigned int bits) { return detail::bit_cast<float>(bits & 0xffffe000u); }
    static float half_of(unsigned int bits, unsigned int which) {
        const unsigned short h = static_cast<unsigned short>(bits >> (16 * which));
        if (Kind == mma_kind::bf16 || Kind == mma_kind::bf16_k16) return float(detail::bit_cast<metal::bfloat>(h));
        return float(detail::bit_cast<metal::half>(h));
    }
    static result apply(const arg* const* args, uint32_t, uint32_t lane) {
        result r{};
        const unsigned int g = lane / 4, t = lane % 4;
        if (Kind == mma_kind::load || Kind == mma_kind::load_trans) {  // ldmatrix: row r starts at lane r's address
            unsigned int bits = 0;
            for (unsigned int k = 0; k < 2; ++k) {
                const unsigned int row = Kind == mma_kind::load ? g : 2 * t + k;
                const unsigned int column = Kind == mma_kind::load ? 2 * t + k : g;
                const unsigned long address = args[row]->a[0] | static_cast<unsigned long>(args[row]->a[1]) << 32;
                bits |= static_cast<unsigned int>(reinterpret_cast<const unsigned short*>(address)[column]) << (16 * k);
            }
            r.d[0] = detail::bit_cast<float>(bits);
            return r;
        }
        if (Kind == mma_kind::transpose) {  // element (row, column) of the 8x8 b16 matrix: lane 4 row + column / 2
            unsigned int bits = 0;
            for (unsigned int k = 0; k < 2; ++k) {
                const unsigned int row = 2 * t + k, column = g;
                bits |= ((args[row * 4 + column / 2]->a[0] >> (16 * (column % 2))) & 0xffffu) << (16 * k);
            }
            r.d[0] = detail::bit_cast<float>(bits);
            return r;
        }
        for (unsigned int i = 0; i < 4; ++i) {
            const unsigned int row = g + 8 * (i / 2), column = 2 * t + i % 2;
            double sum = args[(row % 8) * 4 + column / 2]->c[(row / 8) * 2 + column % 2];
            for (unsigned int k = 0; k < (k16 ? 16u : 8u); ++k)
                sum += double(a(args, row, k)) * double(b(args, k, column));
            r.d[i] = float(sum);
        }
        return r;
    }
};

template <mma_kind Kind> inline void emulated_mma(float (&d)[4], const mma_registers& registers) {
    const mma_result r = coop::rendezvous<mma_op<Kind>>(registers, MG_CALL_SITE);
    for (int i = 0; i < 4; ++i) d[i] = r.d[i];
}

inline unsigned int transpose_b16(unsigned int x) {
    float d[4];
    emulated_mma<mma_kind::transpose>(d, mma_registers{{x, 0, 0, 0}, {0, 0}, {0, 0, 0, 0}});
    return detail::bit_cast<unsigned int>(d[0]);
}

template <bool Trans> inline unsigned int load_matrix_b16(shared_offset address) {
    float d[4];
    emulated_mma<Trans ? mma_kind::load_trans : mma_kind::load>(
        d, mma_registers{{static_cast<unsigned int>(address), static_cast<unsigned int>(address >> 32), 0, 0}, {0, 0},
                         {0, 0, 0, 0}});
    return detail::bit_cast<unsigned int>(d[0]);
}

// ldmatrix .x2 and .x4 as two and four .x1: lanes 0-7 take the addresses of lanes 8q to 8q + 7 for matrix q.
template <bool Trans, int N> inline void load_matrices_b16(shared_offset address, unsigned int (&r)[N]) {
    const unsigned int lane = simd_lane(), low = static_cast<unsigned int>(address);
    const unsigned int high = static_cast<unsigned int>(address >> 32);
    for (unsigned int q = 0; q < N; ++q) {
        const unsigned int source = 8u * q + (lane & 7u);
        const unsigned long theirs =
            shuffle_bits(low, source) | static_cast<unsigned long>(shuffle_bits(high, source)) << 32;
        r[q] = load_matrix_b16<Trans>(theirs);
    }
}
template <bool Trans> inline void load_matrix_pair_b16(shared_offset address, unsigned int (&r)[2]) {
    load_matrices_b16<Trans>(address, r);
}
template <bool Trans> inline void load_matrix_quad_b16(shared_offset address, unsigned int (&r)[4]) {
    load_matrices_b16<Trans>(address, r);
}

inline void mma_f16(float (&d)[4], unsigned int a0, unsigned int a1, unsigned int b0, const float (&c)[4]) {
    emulated_mma<mma_kind::f16>(d, mma_registers{{a0, a1, 0, 0}, {b0, 0}, {c[0], c[1], c[2], c[3]}});
}
inline void mma_bf16(float (&d)[4], unsigned int a0, unsigned int a1, unsigned int b0, const float (&c)[4]) {
    emulated_mma<mma_kind::bf16>(d, mma_registers{{a0, a1, 0, 0}, {b0, 0}, {c[0], c[1], c[2], c[3]}});
}
template <mma_kind Kind>
inline void emulated_mma_k16(float (&d)[4], const unsigned int (&a)[4], const unsigned int (&b)[2],
                             const float (&c)[4]) {
    emulated_mma<Kind>(d, mma_registers{{a[0], a[1], a[2], a[3]}, {b[0], b[1]}, {c[0], c[1], c[2], c[3]}});
}
inline void mma_f16_k16(float (&d)[4], const unsigned int (&a)[4], const unsigned int (&b)[2], const float (&c)[4]) {
    emulated_mma_k16<mma_kind::f16_k16>(d, a, b, c);
}
inline void mma_bf16_k16(float (&d)[4], const unsigned int (&a)[4], const unsigned int (&b)[2], const float (&c)[4]) {
    emulated_mma_k16<mma_kind::bf16_k16>(d, a, b, c);
}
inline void mma_tf32(float (&d)[4], const float (&a)[4], const float (&b)[2], const float (&c)[4]) {
    mma_registers registers{};
    for (int i = 0; i < 4; ++i) registers.a[i] = detail::bit_cast<unsigned int>(a[i]);
    for (int i = 0; i < 2; ++i) registers.b[i] = detail::bit_cast<unsigned int>(b[i]);
    for (int i = 0; i < 4; ++i) registers.c[i] = c[i];
    emulated_mma<mma_kind::tf32>(d, registers);
}

}  // namespace sgm
}  // namespace mg
