// metal/_simdgroup_mma_cuda.h -- the warp instructions behind _simdgroup_mma.h on CUDA sm_80 and later. Every
// lane of the warp takes part in each (Metal requires it of SIMD-group matrix functions). PTX ISA: "Matrix
// fragments for mma.m16n8k8" (lane 4g + t; A: row g (and g + 8), B: column g, C/D: row g (and g + 8), f16/bf16
// columns 2t and 2t + 1, tf32 columns t and t + 4), "movmatrix" and "ldmatrix".
#pragma once

namespace mg {
namespace sgm {

__device__ __forceinline__ unsigned int shuffle_bits(unsigned int x, unsigned int lane) {
    return __shfl_sync(0xffffffffu, x, int(lane));
}

// An 8x8 matrix of 16-bit elements, lane 4g + t holding row g, columns 2t and 2t + 1: its transpose, alike. Not
// volatile, so that the compiler drops the transposes whose result a product does not read (a loaded B operand).
__device__ __forceinline__ unsigned int transpose_b16(unsigned int x) {
    unsigned int r;
    asm("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;" : "=r"(r) : "r"(x));
    return r;
}

// x rounded to TF32 (10 fraction bits), to nearest, ties away from zero; the low 13 bits are zero.
__device__ __forceinline__ float round_tf32(float x) {
    unsigned int r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
    return __uint_as_float(r);
}

// A register whose value no result depends on: rows 8-15 of an m16n8k8 operand when only the top half of the
// product is read. No instruction sets it, where a zero would cost one per product.
__device__ __forceinline__ unsigned int unused_bits() {
    unsigned int r;
    asm("" : "=r"(r));
    return r;
}
__device__ __forceinline__ float unused_float() {
    float r;
    asm("" : "=f"(r));
    return r;
}

// Whether p points into threadgroup (shared) memory, where ldmatrix reads; and where, in that space (32 bits). The
// compiler sees a threadgroup array's alignment through the latter, not through the generic pointer.
using shared_offset = unsigned int;
__device__ __forceinline__ bool is_shared_address(const void* p) { return __isShared(p); }
__device__ __forceinline__ shared_offset shared_address(const void* p) {
    return static_cast<shared_offset>(__cvta_generic_to_shared(p));
}

// ldmatrix: the 8x8 matrix of 16-bit elements whose rows start at the shared-memory addresses that lanes 0-7 give
// (16 contiguous bytes each, 16-byte aligned). Lane 4g + t gets row g, elements 2t and 2t + 1; with Trans, the
// transpose's (elements 2t and 2t + 1 of column g). Volatile and clobbering memory, so that the compiler keeps it
// after the stores it may read.
template <bool Trans> __device__ __forceinline__ unsigned int load_matrix_b16(shared_offset address) {
    unsigned int r;
    if constexpr (Trans)
        asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];" : "=r"(r) : "r"(address) : "memory");
    else
        asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];" : "=r"(r) : "r"(address) : "memory");
    return r;
}

// ldmatrix .x2: two matrices, lanes 0-7 naming the rows of the first and lanes 8-15 those of the second.
template <bool Trans> __device__ __forceinline__ void load_matrix_pair_b16(shared_offset address, unsigned int (&r)[2]) {
    if constexpr (Trans)
        asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];"
                     : "=r"(r[0]), "=r"(r[1]) : "r"(address) : "memory");
    else
        asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];"
                     : "=r"(r[0]), "=r"(r[1]) : "r"(address) : "memory");
}

// ldmatrix .x4: four matrices, lanes 8q to 8q + 7 naming the rows of matrix q.
template <bool Trans> __device__ __forceinline__ void load_matrix_quad_b16(shared_offset address, unsigned int (&r)[4]) {
    if constexpr (Trans)
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(address) : "memory");
    else
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(address) : "memory");
}

// Not volatile: the compiler drops a product whose result nothing reads (the one a waiting product would run, where
// the next product runs it instead).
#define MG_MMA_16BIT(NAME, TYPE)                                                                                  \
    __device__ __forceinline__ void NAME(float (&d)[4], unsigned int a0, unsigned int a1, unsigned int b0,         \
                                         const float (&c)[4]) {                                                   \
        asm("mma.sync.aligned.m16n8k8.row.col.f32." TYPE "." TYPE ".f32 {%0, %1, %2, %3}, {%4, %5}, {%6}, "      \
            "{%7, %8, %9, %10};"                                                                                  \
            : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])                                                      \
            : "r"(a0), "r"(a1), "r"(b0), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));                            \
    }
MG_MMA_16BIT(mma_f16, "f16")
MG_MMA_16BIT(mma_bf16, "bf16")
#undef MG_MMA_16BIT

// m16n8k16: a holds A's pairs (g, 2t), (g + 8, 2t), (g, 2t + 8), (g + 8, 2t + 8); b B's (2t, g) and (2t + 8, g).
#define MG_MMA_16BIT_K16(NAME, TYPE)                                                                              \
    __device__ __forceinline__ void NAME(float (&d)[4], const unsigned int (&a)[4], const unsigned int (&b)[2],   \
                                         const float (&c)[4]) {                                                   \
        asm("mma.sync.aligned.m16n8k16.row.col.f32." TYPE "." TYPE ".f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "    \
            "{%8, %9}, {%10, %11, %12, %13};"                                                                     \
            : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])                                                      \
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),  \
              "f"(c[3]));                                                                                         \
    }
MG_MMA_16BIT_K16(mma_f16_k16, "f16")
MG_MMA_16BIT_K16(mma_bf16_k16, "bf16")
#undef MG_MMA_16BIT_K16

// a and b hold TF32 values (round_tf32, or half and bfloat widened) in float registers.
__device__ __forceinline__ void mma_tf32(float (&d)[4], const float (&a)[4], const float (&b)[2], const float (&c)[4]) {
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
                 "{%8, %9}, {%10, %11, %12, %13};"
                 : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
                 : "r"(__float_as_uint(a[0])), "r"(__float_as_uint(a[1])), "r"(__float_as_uint(a[2])),
                   "r"(__float_as_uint(a[3])), "r"(__float_as_uint(b[0])), "r"(__float_as_uint(b[1])),
                   "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
}

}  // namespace sgm
}  // namespace mg
