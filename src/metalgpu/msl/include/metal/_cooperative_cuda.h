// metal/_cooperative_cuda.h -- barriers, SIMD-group and quad-group functions on the CUDA target.
//
// A Metal threadgroup is a CUDA block and a SIMD-group is a warp of 32 lanes, so:
//   threadgroup_barrier  __syncthreads() (after __threadfence() when device memory is named). Threads outside the
//                        grid have returned before the kernel started; threads that exited do not hold up a CTA
//                        barrier (PTX `exit`), so partial edge threadgroups pass their barriers as on Metal.
//   simd_* / quad_*      the active lanes are __activemask() at the call; values move with __shfl_sync and votes
//                        with __ballot_sync, over exactly those lanes. Results follow _group.h, as on the CPU:
//                        a move from an inactive lane returns the lane's own value, and when some lanes are
//                        inactive a reduction or scan folds the active lanes of the group in lane order. With
//                        every lane active, reductions are a butterfly (integers up to 32 bits: the sm_80
//                        __reduce_*_sync instructions) and scans are Hillis-Steele: the same values, combined in
//                        another order (float sums may round differently from the CPU's left-to-right fold).
//
// Lanes are the hardware's (%laneid). For 1-D threadgroups that is thread_index_in_threadgroup % 32, as on the
// CPU; for a partial 2-D/3-D threadgroup at the grid's edge, CUDA forms warps over the full block shape, and the
// wrappers report thread_index_in_simdgroup and friends from that hardware numbering (see msl/translate.py).
//
// Lanes that should meet at a SIMD-group function must be converged there, as for any *_sync intrinsic: calls in
// divergent code see the lanes that took the same path, which is Metal's rule too.
#pragma once
#include "_group.h"

namespace mg {
namespace warp {

using group::kNone;
using group::kSimdWidth;

__device__ __forceinline__ unsigned int lane_id() {
    unsigned int lane;
    asm("mov.u32 %0, %%laneid;" : "=r"(lane));
    return lane;
}

// x as seen in lane `source` (a lane of `active`; otherwise the result is undefined). Any type, 32 bits at a time.
template <class T> __device__ __forceinline__ T shuffle(unsigned int active, const T& x, unsigned int source) {
    constexpr int words = int((sizeof(T) + 3) / 4);
    unsigned int bits[words] = {};
    memcpy(bits, &x, sizeof(T));
    for (int i = 0; i < words; ++i) bits[i] = __shfl_sync(active, bits[i], int(source));
    T r;
    memcpy(&r, bits, sizeof(T));
    return r;
}

// ---- reductions ---------------------------------------------------------------------------------------------------

// Integer reductions that sm_80 and later do in one instruction, over any mask.
template <class T, class F> constexpr bool has_redux() {
    if constexpr (detail::shape<T>::size != 0 || !detail::is_integral<T>::value || sizeof(T) > 4) return false;
    else if constexpr (detail::is_same<T, bool>::value) return false;
    else return detail::is_same<F, group::sum_fn>::value || detail::is_same<F, group::min_fn>::value ||
                detail::is_same<F, group::max_fn>::value || detail::is_same<F, group::and_fn>::value ||
                detail::is_same<F, group::or_fn>::value || detail::is_same<F, group::xor_fn>::value;
}

#if __CUDA_ARCH__ >= 800
// Narrow integers widen to int or unsigned: sums are the same modulo 2^bits, min/max and the bit operations exact.
template <class T, class F> __device__ __forceinline__ T redux(unsigned int active, T x) {
    using Wide = detail::conditional_t<detail::is_signed<T>::value, int, unsigned int>;
    const Wide w = Wide(x);
    if constexpr (detail::is_same<F, group::sum_fn>::value) return T(__reduce_add_sync(active, w));
    else if constexpr (detail::is_same<F, group::min_fn>::value) return T(__reduce_min_sync(active, w));
    else if constexpr (detail::is_same<F, group::max_fn>::value) return T(__reduce_max_sync(active, w));
    else if constexpr (detail::is_same<F, group::and_fn>::value) return T(__reduce_and_sync(active, unsigned(w)));
    else if constexpr (detail::is_same<F, group::or_fn>::value) return T(__reduce_or_sync(active, unsigned(w)));
    else return T(__reduce_xor_sync(active, unsigned(w)));
}
#endif

// Every lane gets the fold of the active lanes of its group (W = 32: the SIMD-group, W = 4: its quad).
template <class T, class F, unsigned int W> __device__ __forceinline__ T reduce(const T& x) {
    const unsigned int active = __activemask();
    const unsigned int lane = lane_id();
#if __CUDA_ARCH__ >= 800
    if constexpr (W == kSimdWidth && has_redux<T, F>()) return redux<T, F>(active, x);
#endif
    if (active == 0xffffffffu) {
        // Butterfly: after the step of `offset`, r is the fold of the aligned block of 2 * offset lanes. The lower
        // half's value always comes first, so both halves compute the very same value.
        T r = x;
        for (unsigned int offset = 1; offset < W; offset <<= 1) {
            const T other = shuffle(active, r, lane ^ offset);
            r = (lane & offset) ? F{}(other, r) : F{}(r, other);
        }
        return r;
    }
    // Some lanes inactive: every active lane runs the same W shuffles and folds the active ones in lane order.
    const unsigned int base = lane & ~(W - 1u);
    T r = x;
    bool first = true;
    for (unsigned int j = 0; j < W; ++j) {
        const T v = shuffle(active, x, base + j);
        if ((active >> (base + j)) & 1u) {
            r = first ? v : F{}(r, v);
            first = false;
        }
    }
    return r;
}

// Inclusive or exclusive scan over the active lanes of the group at and below (or below) this lane.
template <class T, class F, bool Inclusive, int Identity, unsigned int W>
__device__ __forceinline__ T prefix(const T& x) {
    const unsigned int active = __activemask();
    const unsigned int lane = lane_id();
    const unsigned int j = lane & (W - 1u);  // the lane within its group
    if (active == 0xffffffffu) {
        // Hillis-Steele: after the step of `offset`, r is the fold of lanes j - 2 * offset + 1 .. j of the group.
        T r = x;
        for (unsigned int offset = 1; offset < W; offset <<= 1) {
            const T below = shuffle(active, r, j >= offset ? lane - offset : lane);
            if (j >= offset) r = F{}(below, r);
        }
        if constexpr (Inclusive) {
            return r;
        } else {
            const T previous = shuffle(active, r, j > 0 ? lane - 1 : lane);
            return j > 0 ? previous : T(Identity);
        }
    }
    const unsigned int base = lane - j;
    const unsigned int wanted = active & group::lanes_below<Inclusive>(lane);
    T r = T(Identity);
    for (unsigned int k = 0; k < W; ++k) {
        const T v = shuffle(active, x, base + k);
        if ((wanted >> (base + k)) & 1u) r = F{}(r, v);
    }
    return r;
}

// ---- moves --------------------------------------------------------------------------------------------------------

template <class T, class Pick, unsigned int W> __device__ __forceinline__ T move(const T& x, unsigned int param) {
    const unsigned int active = __activemask();
    const unsigned int lane = lane_id();
    const unsigned int base = lane & ~(W - 1u);
    const unsigned int source = Pick::source(lane - base, param, W);
    const unsigned int from = source == kNone ? lane : base + source;
    const T v = shuffle(active, x, from);
    return ((active >> from) & 1u) ? v : x;
}

template <class T, bool Up, unsigned int W>
__device__ __forceinline__ T fill(const T& x, const T& filler, unsigned int delta, unsigned int modulo) {
    const unsigned int active = __activemask();
    const unsigned int lane = lane_id();
    bool from_fill;
    const unsigned int source = group::fill_source<Up, W>(lane, delta, modulo, from_fill);
    const bool valid = source < kSimdWidth && ((active >> source) & 1u);
    const unsigned int from = valid ? source : lane;
    const T data = shuffle(active, x, from);
    const T refill = shuffle(active, filler, from);
    if (!valid) return x;
    return from_fill ? refill : data;
}

template <class T, unsigned int W> __device__ __forceinline__ T first(const T& x) {
    const unsigned int active = __activemask();
    const unsigned int lowest = unsigned(__ffs(int(active & group::group_mask<W>(lane_id())))) - 1u;
    return shuffle(active, x, lowest);
}

// ---- votes --------------------------------------------------------------------------------------------------------

// The active lanes of this lane's group whose predicate is true, and the active lanes, both shifted so that bit 0
// is the group's first lane.
struct vote_value {
    unsigned int bits;
    unsigned int active;
};
template <unsigned int W> __device__ __forceinline__ vote_value ballot(bool predicate) {
    const unsigned int active = __activemask();
    const unsigned int lane = lane_id();
    const unsigned int base = lane & ~(W - 1u);
    const unsigned int mine = active & group::group_mask<W>(lane);
    return {(__ballot_sync(active, predicate) & mine) >> base, mine >> base};
}
template <unsigned int W> __device__ __forceinline__ bool is_first() {
    const unsigned int lane = lane_id();
    return unsigned(__ffs(int(__activemask() & group::group_mask<W>(lane)))) - 1u == lane;
}

// A value as its plain type: swizzles and packed vectors read out to vec<T, N>.
template <class X> using value_t = detail::remove_cvref_t<decltype(detail::value_of(detail::declval<const X&>()))>;

}  // namespace warp
}  // namespace mg

namespace metal {

// ---- barriers -------------------------------------------------------------------------------------------------
// __syncthreads() already makes the block's global and shared memory accesses before it visible to the block;
// for mem_device the fence also orders them for the rest of the device, which is more than Metal asks.
__device__ __forceinline__ void threadgroup_barrier(mem_flags flags = mem_flags::mem_none) {
    if ((flags & mem_flags::mem_device) != mem_flags::mem_none) __threadfence();
    __syncthreads();
}
__device__ __forceinline__ void simdgroup_barrier(mem_flags flags = mem_flags::mem_none) {
    if ((flags & mem_flags::mem_device) != mem_flags::mem_none) __threadfence();
    __syncwarp(__activemask());
}

// ---- the SIMD-group (W = 32) and quad-group (W = 4) functions, over scalars and vectors ---------------------------
#define MG_GROUP_REDUCE(NAME, F, W)                                                                                 \
    template <class X, class T = mg::warp::value_t<X>> __device__ __forceinline__ T NAME(const X& x) {             \
        return mg::warp::reduce<T, mg::group::F, W>(T(x));                                                          \
    }
#define MG_GROUP_PREFIX(NAME, F, INCLUSIVE, IDENTITY, W)                                                            \
    template <class X, class T = mg::warp::value_t<X>> __device__ __forceinline__ T NAME(const X& x) {             \
        return mg::warp::prefix<T, mg::group::F, INCLUSIVE, IDENTITY, W>(T(x));                                     \
    }
#define MG_GROUP_MOVE(NAME, PICK, W)                                                                                \
    template <class X, class T = mg::warp::value_t<X>> __device__ __forceinline__ T NAME(const X& x, ushort param) { \
        return mg::warp::move<T, mg::group::PICK, W>(T(x), param);                                                  \
    }
#define MG_GROUP_FILL(NAME, UP, W)                                                                                  \
    template <class X, class T = mg::warp::value_t<X>>                                                              \
    __device__ __forceinline__ T NAME(const X& x, const X& fill, ushort delta) {                                    \
        return mg::warp::fill<T, UP, W>(T(x), T(fill), delta, 0u);                                                 \
    }                                                                                                               \
    template <class X, class T = mg::warp::value_t<X>>                                                              \
    __device__ __forceinline__ T NAME(const X& x, const X& fill, ushort delta, ushort modulo) {                     \
        return mg::warp::fill<T, UP, W>(T(x), T(fill), delta, modulo);                                             \
    }
#define MG_GROUP_FUNCTIONS(P, W)                                                                                    \
    MG_GROUP_REDUCE(P##_sum, sum_fn, W)                                                                             \
    MG_GROUP_REDUCE(P##_product, product_fn, W)                                                                     \
    MG_GROUP_REDUCE(P##_min, min_fn, W)                                                                             \
    MG_GROUP_REDUCE(P##_max, max_fn, W)                                                                             \
    MG_GROUP_REDUCE(P##_and, and_fn, W)                                                                             \
    MG_GROUP_REDUCE(P##_or, or_fn, W)                                                                               \
    MG_GROUP_REDUCE(P##_xor, xor_fn, W)                                                                             \
    MG_GROUP_PREFIX(P##_prefix_inclusive_sum, sum_fn, true, 0, W)                                                   \
    MG_GROUP_PREFIX(P##_prefix_exclusive_sum, sum_fn, false, 0, W)                                                  \
    MG_GROUP_PREFIX(P##_prefix_inclusive_product, product_fn, true, 1, W)                                           \
    MG_GROUP_PREFIX(P##_prefix_exclusive_product, product_fn, false, 1, W)                                          \
    MG_GROUP_SHUFFLES(P, W)                                                                                         \
    template <class X, class T = mg::warp::value_t<X>> __device__ __forceinline__ T P##_broadcast_first(const X& x) { \
        return mg::warp::first<T, W>(T(x));                                                                         \
    }                                                                                                               \
    __device__ __forceinline__ bool P##_all(bool x) {                                                               \
        const mg::warp::vote_value v = mg::warp::ballot<W>(x);                                                      \
        return v.bits == v.active;                                                                                  \
    }                                                                                                               \
    __device__ __forceinline__ bool P##_any(bool x) { return mg::warp::ballot<W>(x).bits != 0; }                    \
    __device__ __forceinline__ P##_vote P##_ballot(bool x) {                                                        \
        const mg::warp::vote_value v = mg::warp::ballot<W>(x);                                                      \
        return P##_vote(P##_vote::vote_t(v.bits), P##_vote::vote_t(v.active));                                      \
    }                                                                                                               \
    __device__ __forceinline__ P##_vote P##_active_threads_mask() {                                                 \
        const mg::warp::vote_value v = mg::warp::ballot<W>(true);                                                   \
        return P##_vote(P##_vote::vote_t(v.active), P##_vote::vote_t(v.active));                                    \
    }                                                                                                               \
    __device__ __forceinline__ bool P##_is_first() { return mg::warp::is_first<W>(); }

MG_GROUP_FUNCTIONS(simd, 32u)
MG_GROUP_FUNCTIONS(quad, 4u)
#undef MG_GROUP_FUNCTIONS
#undef MG_GROUP_REDUCE
#undef MG_GROUP_PREFIX
#undef MG_GROUP_MOVE
#undef MG_GROUP_FILL

}  // namespace metal

namespace mg {
// The calling lane's index in its SIMD-group, for _simdgroup_matrix.h.
__device__ __forceinline__ unsigned int simd_lane() { return warp::lane_id(); }
}  // namespace mg

#define MG_SIMD_FUNC __device__ __forceinline__
#define MG_SITE_PARAM
#define MG_SITE_ARG
#include "_simd_builtins.h"
#undef MG_SIMD_FUNC
#undef MG_SITE_PARAM
#undef MG_SITE_ARG
#include "_simdgroup_matrix.h"
