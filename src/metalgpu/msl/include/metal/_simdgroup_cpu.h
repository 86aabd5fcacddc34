// metal/_simdgroup_cpu.h -- the SIMD-group and quad-group functions for the CPU target: a rendezvous of the lanes
// of a SIMD-group at one call site, the operations that compute every lane's result, and the metal:: functions
// (simd_sum, quad_shuffle, simd_ballot, simdgroup_barrier, ...) over them.
//
// Lanes are fibers of the cooperative runner (_fibers_cpu.h). Each lane leaves a pointer to its argument and to
// its result slot and waits; the lane that completes the set computes every lane's result. Active lanes are those
// that arrive; when no fiber of the group can run, the runner releases the waiting lanes with the lanes that did
// arrive (per call site). Outside a cooperative run a call sees a SIMD-group of one lane.
#pragma once
#include <cstdint>

#include "_fibers_cpu.h"
#include "_group.h"

namespace mg {
namespace coop {

// ---- SIMD-group rendezvous ----------------------------------------------------------------------------------

// Op: `arg`, `result`, and `static result apply(const arg* const* args, uint32_t lanes, uint32_t lane)` which
// computes lane's result from the arguments of the active lanes (args[i] is null for inactive lane i).
template <class Op> void complete(group_state& g, uint32_t sg, uint32_t lanes) {
    const uint32_t first = sg * kSimdWidth;
    const typename Op::arg* args[kSimdWidth] = {};
    for (uint32_t i = 0; i < kSimdWidth; ++i)
        if (lanes >> i & 1u) args[i] = static_cast<const typename Op::arg*>(g.fibers[first + i].in);
    for (uint32_t i = 0; i < kSimdWidth; ++i) {
        if (!(lanes >> i & 1u)) continue;
        fiber& f = g.fibers[first + i];
        *static_cast<typename Op::result*>(f.out) = Op::apply(args, lanes, i);
        f.state = ready;
    }
}

template <class Op> typename Op::result rendezvous(const typename Op::arg& a, site where) {
    group_state* g = t_group;
    if (g == nullptr) {  // not in a cooperative run: a SIMD-group of one lane
        const typename Op::arg* args[kSimdWidth] = {&a};
        return Op::apply(args, 1u, 0);
    }
    const uint32_t self = g->current;
    const uint32_t sg = self / kSimdWidth;
    fiber& f = g->fibers[self];
    typename Op::result r;
    f.in = &a;
    f.out = &r;
    f.where = where;
    f.complete = &complete<Op>;
    simdgroup_state& s = g->simd[sg];
    if (s.waiting == 0) {
        s.where = where;
        s.mixed = false;
    } else if (s.where != where) {
        s.mixed = true;
    }
    if (!s.mixed && s.waiting + 1 == s.live) {  // the last lane of the SIMD-group: compute for all
        f.state = at_simd;
        s.waiting = 0;
        const uint32_t first = sg * kSimdWidth;
        uint32_t lanes = 0;
        for (uint32_t i = 0; i < kSimdWidth && first + i < g->count; ++i)
            if (g->fibers[first + i].state == at_simd) lanes |= 1u << i;
        complete<Op>(*g, sg, lanes);
        run_other_simdgroups_first(*g, self);
        return r;
    }
    s.waiting += 1;
    f.state = at_simd;
    yield_from(*g, self);
    return r;
}

// ---- the operations -------------------------------------------------------------------------------------------

// A value as its plain type: swizzles and packed vectors read out to vec<T, N>.
template <class X> using value_t = detail::remove_cvref_t<decltype(detail::value_of(detail::declval<const X&>()))>;

// The combining operations and group_mask come from _group.h.
using group::sum_fn;
using group::product_fn;
using group::and_fn;
using group::or_fn;
using group::xor_fn;
using group::min_fn;
using group::max_fn;
using group::group_mask;
inline uint32_t lowest(uint32_t mask) { return uint32_t(__builtin_ctz(mask)); }

template <class T, class F, uint32_t W> struct reduce_op {
    using arg = T;
    using result = T;
    static T apply(const T* const* args, uint32_t lanes, uint32_t lane) {
        uint32_t m = lanes & group_mask<W>(lane);
        T r = *args[lowest(m)];
        for (m &= m - 1; m; m &= m - 1) r = T(F{}(r, *args[lowest(m)]));
        return r;
    }
};

// Inclusive or exclusive scan over the active lanes below (and at) lane, within its group; Zero is the identity.
template <class T, class F, bool Inclusive, int Identity, uint32_t W> struct prefix_op {
    using arg = T;
    using result = T;
    static T apply(const T* const* args, uint32_t lanes, uint32_t lane) {
        uint32_t m = lanes & group_mask<W>(lane) & group::lanes_below<Inclusive>(lane);
        T r = T(Identity);
        for (; m; m &= m - 1) r = T(F{}(r, *args[lowest(m)]));
        return r;
    }
};

// Moves: each lane reads the value of another lane of its group, picked by Pick::source(lane-in-group, param, W)
// (kNone: keep its own value).
template <class T> struct moved { T data; uint32_t param; };
template <class T, class Pick, uint32_t W> struct move_op {
    using arg = moved<T>;
    using result = T;
    static T apply(const arg* const* args, uint32_t lanes, uint32_t lane) {
        const uint32_t base = lane & ~(W - 1u);
        const uint32_t source = Pick::source(lane - base, args[lane]->param, W);
        if (source == kNone || !(lanes >> (base + source) & 1u)) return args[lane]->data;
        return args[base + source]->data;
    }
};
using group::pick_lane;
using group::pick_xor;
using group::pick_up;
using group::pick_down;
using group::pick_rotate_up;
using group::pick_rotate_down;

// simd_shuffle_and_fill_up/down: within segments of `modulo` lanes, lanes shifted off one end are refilled from
// the other end of `fill`.
template <class T> struct filled { T data; T fill; uint32_t delta; uint32_t modulo; };
template <class T, bool Up, uint32_t W> struct fill_op {
    using arg = filled<T>;
    using result = T;
    static T apply(const arg* const* args, uint32_t lanes, uint32_t lane) {
        const arg& a = *args[lane];
        bool from_fill;
        const uint32_t source = group::fill_source<Up, W>(lane, a.delta, a.modulo, from_fill);
        if (source >= kSimdWidth || !(lanes >> source & 1u)) return a.data;
        return from_fill ? args[source]->fill : args[source]->data;
    }
};

template <class T, uint32_t W> struct first_op {
    using arg = T;
    using result = T;
    static T apply(const T* const* args, uint32_t lanes, uint32_t lane) {
        return *args[lowest(lanes & group_mask<W>(lane))];
    }
};

// Votes: the mask of active lanes of the group whose argument is true (bit i is lane i of the group), and the
// active lanes themselves.
struct vote_value { uint64_t bits; uint64_t active; };
template <uint32_t W> struct ballot_op {
    using arg = bool;
    using result = vote_value;
    static vote_value apply(const bool* const* args, uint32_t lanes, uint32_t lane) {
        const uint32_t base = lane & ~(W - 1u);
        const uint32_t m = lanes & group_mask<W>(lane);
        uint64_t bits = 0;
        for (uint32_t r = m; r; r &= r - 1)
            if (*args[lowest(r)]) bits |= uint64_t(1) << (lowest(r) - base);
        return {bits, uint64_t(m >> base)};
    }
};
template <uint32_t W> struct is_first_op {
    using arg = bool;
    using result = bool;
    static bool apply(const bool* const*, uint32_t lanes, uint32_t lane) {
        return lowest(lanes & group_mask<W>(lane)) == lane;
    }
};
template <class T> struct none_op {
    using arg = T;
    using result = bool;
    static bool apply(const T* const*, uint32_t, uint32_t) { return true; }
};

}  // namespace coop
}  // namespace mg

namespace metal {

// ---- the SIMD-group barrier ----------------------------------------------------------------------------------
// Every active lane of the SIMD-group reaches the barrier before any passes it (threadgroup_barrier is in
// _fibers_cpu.h). Memory is shared by all fibers of an OS thread, so the flags need no action.
inline void simdgroup_barrier(mem_flags = mem_flags::mem_none, mg::coop::site where = MG_CALL_SITE) {
    mg::coop::rendezvous<mg::coop::none_op<bool>>(false, where);
}

// simd_vote and quad_vote come from _group.h.

// ---- the SIMD-group (W = 32) and quad-group (W = 4) functions, over scalars and vectors ---------------------------
// Each takes the call site as a hidden last argument (MG_CALL_SITE): lanes meet the lanes at the same call.
#define MG_GROUP_FUNCTIONS(P, W)                                                                                    \
    template <class X, class T = mg::coop::value_t<X>>                                                              \
    T P##_sum(const X& x, mg::coop::site w = MG_CALL_SITE) {                                                        \
        return mg::coop::rendezvous<mg::coop::reduce_op<T, mg::coop::sum_fn, W>>(T(x), w);                         \
    }                                                                                                               \
    template <class X, class T = mg::coop::value_t<X>>                                                              \
    T P##_product(const X& x, mg::coop::site w = MG_CALL_SITE) {                                                    \
        return mg::coop::rendezvous<mg::coop::reduce_op<T, mg::coop::product_fn, W>>(T(x), w);                     \
    }                                                                                                               \
    template <class X, class T = mg::coop::value_t<X>>                                                              \
    T P##_min(const X& x, mg::coop::site w = MG_CALL_SITE) {                                                        \
        return mg::coop::rendezvous<mg::coop::reduce_op<T, mg::coop::min_fn, W>>(T(x), w);                         \
    }                                                                                                               \
    template <class X, class T = mg::coop::value_t<X>>                                                              \
    T P##_max(const X& x, mg::coop::site w = MG_CALL_SITE) {                                                        \
        return mg::coop::rendezvous<mg::coop::reduce_op<T, mg::coop::max_fn, W>>(T(x), w);                         \
    }                                                                                                               \
    template <class X, class T = mg::coop::value_t<X>>                                                              \
    T P##_and(const X& x, mg::coop::site w = MG_CALL_SITE) {                                                        \
        return mg::coop::rendezvous<mg::coop::reduce_op<T, mg::coop::and_fn, W>>(T(x), w);                         \
    }                                                                                                               \
    template <class X, class T = mg::coop::value_t<X>>                                                              \
    T P##_or(const X& x, mg::coop::site w = MG_CALL_SITE) {                                                         \
        return mg::coop::rendezvous<mg::coop::reduce_op<T, mg::coop::or_fn, W>>(T(x), w);                          \
    }                                                                                                               \
    template <class X, class T = mg::coop::value_t<X>>                                                              \
    T P##_xor(const X& x, mg::coop::site w = MG_CALL_SITE) {                                                        \
        return mg::coop::rendezvous<mg::coop::reduce_op<T, mg::coop::xor_fn, W>>(T(x), w);                         \
    }                                                                                                               \
    template <class X, class T = mg::coop::value_t<X>>                                                              \
    T P##_prefix_inclusive_sum(const X& x, mg::coop::site w = MG_CALL_SITE) {                                       \
        return mg::coop::rendezvous<mg::coop::prefix_op<T, mg::coop::sum_fn, true, 0, W>>(T(x), w);                \
    }                                                                                                               \
    template <class X, class T = mg::coop::value_t<X>>                                                              \
    T P##_prefix_exclusive_sum(const X& x, mg::coop::site w = MG_CALL_SITE) {                                       \
        return mg::coop::rendezvous<mg::coop::prefix_op<T, mg::coop::sum_fn, false, 0, W>>(T(x), w);               \
    }                                                                                                               \
    template <class X, class T = mg::coop::value_t<X>>                                                              \
    T P##_prefix_inclusive_product(const X& x, mg::coop::site w = MG_CALL_SITE) {                                   \
        return mg::coop::rendezvous<mg::coop::prefix_op<T, mg::coop::product_fn, true, 1, W>>(T(x), w);            \
    }                                                                                                               \
    template <class X, class T = mg::coop::value_t<X>>                                                              \
    T P##_prefix_exclusive_product(const X& x, mg::coop::site w = MG_CALL_SITE) {                                   \
        return mg::coop::rendezvous<mg::coop::prefix_op<T, mg::coop::product_fn, false, 1, W>>(T(x), w);           \
    }                                                                                                               \
    MG_GROUP_SHUFFLES(P, W)                                                                                         \
    template <class X, class T = mg::coop::value_t<X>>                                                              \
    T P##_broadcast_first(const X& x, mg::coop::site w = MG_CALL_SITE) {                                            \
        return mg::coop::rendezvous<mg::coop::first_op<T, W>>(T(x), w);                                            \
    }                                                                                                               \
    inline bool P##_all(bool x, mg::coop::site w = MG_CALL_SITE) {                                                  \
        const mg::coop::vote_value v = mg::coop::rendezvous<mg::coop::ballot_op<W>>(x, w);                         \
        return v.bits == v.active;                                                                                  \
    }                                                                                                               \
    inline bool P##_any(bool x, mg::coop::site w = MG_CALL_SITE) {                                                  \
        return mg::coop::rendezvous<mg::coop::ballot_op<W>>(x, w).bits != 0;                                       \
    }                                                                                                               \
    inline P##_vote P##_ballot(bool x, mg::coop::site w = MG_CALL_SITE) {                                           \
        const mg::coop::vote_value v = mg::coop::rendezvous<mg::coop::ballot_op<W>>(x, w);                         \
        return P##_vote(P##_vote::vote_t(v.bits), P##_vote::vote_t(v.active));                                     \
    }                                                                                                               \
    inline P##_vote P##_active_threads_mask(mg::coop::site w = MG_CALL_SITE) {                                      \
        const mg::coop::vote_value v = mg::coop::rendezvous<mg::coop::ballot_op<W>>(true, w);                      \
        return P##_vote(P##_vote::vote_t(v.active), P##_vote::vote_t(v.active));                                   \
    }                                                                                                               \
    inline bool P##_is_first(mg::coop::site w = MG_CALL_SITE) {                                                     \
        return mg::coop::rendezvous<mg::coop::is_first_op<W>>(true, w);                                            \
    }

#define MG_GROUP_MOVE(NAME, PICK, W)                                                                                \
    template <class X, class T = mg::coop::value_t<X>>                                                              \
    T NAME(const X& x, ushort param, mg::coop::site w = MG_CALL_SITE) {                                             \
        return mg::coop::rendezvous<mg::coop::move_op<T, mg::coop::PICK, W>>(mg::coop::moved<T>{T(x), param}, w);  \
    }
#define MG_GROUP_FILL(NAME, UP, W)                                                                                  \
    template <class X, class T = mg::coop::value_t<X>>                                                              \
    T NAME(const X& x, const X& fill, ushort delta, mg::coop::site w = MG_CALL_SITE) {                              \
        return mg::coop::rendezvous<mg::coop::fill_op<T, UP, W>>(mg::coop::filled<T>{T(x), T(fill), delta, 0u}, w);\
    }                                                                                                               \
    template <class X, class T = mg::coop::value_t<X>>                                                              \
    T NAME(const X& x, const X& fill, ushort delta, ushort modulo, mg::coop::site w = MG_CALL_SITE) {               \
        return mg::coop::rendezvous<mg::coop::fill_op<T, UP, W>>(                                                  \
            mg::coop::filled<T>{T(x), T(fill), delta, modulo}, w);                                                  \
    }

MG_GROUP_FUNCTIONS(simd, 32u)
MG_GROUP_FUNCTIONS(quad, 4u)
#undef MG_GROUP_FUNCTIONS
#undef MG_GROUP_MOVE
#undef MG_GROUP_FILL

}  // namespace metal

namespace mg {
// The calling lane's index in its SIMD-group (0 outside a cooperative run), for _simdgroup_matrix.h.
inline uint32_t simd_lane() {
    const coop::group_state* g = coop::t_group;
    return g == nullptr ? 0 : g->current % group::kSimdWidth;
}
}  // namespace mg

#define MG_SIMD_FUNC inline
#define MG_SITE_PARAM , mg::coop::site where = MG_CALL_SITE
#define MG_SITE_ARG , where
#include "_simd_builtins.h"
#undef MG_SIMD_FUNC
#undef MG_SITE_PARAM
#undef MG_SITE_ARG
#include "_simdgroup_matrix.h"
