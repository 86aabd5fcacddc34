// metal/_simd_builtins.h -- the compiler builtins behind Metal's SIMD-group functions (__metal_simd_sum(x), ...),
// which kernels call to define their own overloads (MLX's bf16_math.h). Included at the end of _simdgroup_cpu.h
// and _cooperative_cuda.h, each of which defines MG_SITE_PARAM and MG_SITE_ARG (the CPU's hidden call-site
// argument, nothing on CUDA) and mg::simd_lane() first.
#pragma once

#define MG_SIMD_BUILTIN_1(NAME)                                                                               \
    template <class X> MG_SIMD_FUNC auto __metal_##NAME(const X& x MG_SITE_PARAM) {                           \
        return metal::NAME(x MG_SITE_ARG);                                                                    \
    }
#define MG_SIMD_BUILTIN_MOVE(NAME)                                                                            \
    template <class X> MG_SIMD_FUNC auto __metal_##NAME(const X& x, ushort lane MG_SITE_PARAM) {              \
        return metal::NAME(x, lane MG_SITE_ARG);                                                              \
    }
#define MG_SIMD_BUILTIN_FILL(NAME)                                                                            \
    template <class X>                                                                                        \
    MG_SIMD_FUNC auto __metal_##NAME(const X& x, const X& fill, ushort delta, ushort modulo MG_SITE_PARAM) {  \
        return metal::NAME(x, fill, delta, modulo MG_SITE_ARG);                                               \
    }
MG_SIMD_BUILTIN_1(simd_sum) MG_SIMD_BUILTIN_1(simd_product) MG_SIMD_BUILTIN_1(simd_min) MG_SIMD_BUILTIN_1(simd_max)
MG_SIMD_BUILTIN_1(simd_and) MG_SIMD_BUILTIN_1(simd_or) MG_SIMD_BUILTIN_1(simd_xor)
MG_SIMD_BUILTIN_1(simd_prefix_inclusive_sum) MG_SIMD_BUILTIN_1(simd_prefix_exclusive_sum)
MG_SIMD_BUILTIN_1(simd_prefix_inclusive_product) MG_SIMD_BUILTIN_1(simd_prefix_exclusive_product)
MG_SIMD_BUILTIN_1(simd_broadcast_first)
MG_SIMD_BUILTIN_MOVE(simd_shuffle) MG_SIMD_BUILTIN_MOVE(simd_broadcast) MG_SIMD_BUILTIN_MOVE(simd_shuffle_xor)
MG_SIMD_BUILTIN_MOVE(simd_shuffle_up) MG_SIMD_BUILTIN_MOVE(simd_shuffle_down)
MG_SIMD_BUILTIN_MOVE(simd_shuffle_rotate_up) MG_SIMD_BUILTIN_MOVE(simd_shuffle_rotate_down)
MG_SIMD_BUILTIN_FILL(simd_shuffle_and_fill_up) MG_SIMD_BUILTIN_FILL(simd_shuffle_and_fill_down)
#undef MG_SIMD_BUILTIN_1
#undef MG_SIMD_BUILTIN_MOVE
#undef MG_SIMD_BUILTIN_FILL

// The size of a SIMD-group and the calling lane's index in it, in the type of the (unused) argument.
template <class T> MG_SIMD_FUNC T __metal_get_simdgroup_size(T) { return T(32); }
template <class T> MG_SIMD_FUNC T __metal_get_thread_index_in_simdgroup(T) { return T(mg::simd_lane()); }
