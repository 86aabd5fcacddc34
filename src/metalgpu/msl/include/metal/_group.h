// metal/_group.h -- what the SIMD-group and quad-group functions compute, written once for both targets.
//
// _cooperative_cpu.h (lanes meet at a rendezvous of fibers) and _cooperative_cuda.h (lanes of a warp exchange
// values with shuffles) differ only in how a lane gets the values of the other lanes. Which values it combines,
// in which order, and which lane a move reads from are decided here, so both targets give the same results:
//   - lanes are numbered 0..31 within the SIMD-group; a quad-group is lanes 4k..4k+3 of one SIMD-group;
//   - only active lanes take part: a reduction or scan folds the active lanes of the group in lane order, and a
//     move whose source lane is inactive (or outside the group) returns the lane's own value.
#pragma once

namespace mg {
namespace group {

constexpr unsigned int kSimdWidth = 32;
constexpr unsigned int kNone = 0xffffffffu;  // a move with no source lane: the lane keeps its own value

// ---- combining two values (reductions and scans) ----------------------------------------------------------------
template <class T> MG_FUNC T smaller(const T& a, const T& b) { return b < a ? b : a; }
template <class T> MG_FUNC T larger(const T& a, const T& b) { return a < b ? b : a; }

struct sum_fn { template <class T> MG_FUNC T operator()(const T& a, const T& b) const { return T(a + b); } };
struct product_fn { template <class T> MG_FUNC T operator()(const T& a, const T& b) const { return T(a * b); } };
// and, or, xor: floating-point values combine their bits, as Metal's builtins do (MLX's bfloat simd_xor passes a float).
template <int Size> struct unsigned_of_size;
template <> struct unsigned_of_size<2> { using type = unsigned short; };
template <> struct unsigned_of_size<4> { using type = unsigned int; };
template <> struct unsigned_of_size<8> { using type = unsigned long; };
template <class T, int N = detail::shape<T>::size> struct bits_of {
    using type = metal::vec<typename unsigned_of_size<int(sizeof(typename detail::shape<T>::elem))>::type, N>;
};
template <class T> struct bits_of<T, 0> { using type = typename unsigned_of_size<int(sizeof(T))>::type; };
template <class T, class F> MG_FUNC T bitwise(const T& a, const T& b, F f) {
    if constexpr (detail::is_floating_point<typename detail::shape<T>::elem>::value) {
        using U = typename bits_of<T>::type;
        return detail::bit_cast<T>(U(f(detail::bit_cast<U>(a), detail::bit_cast<U>(b))));
    } else {
        return T(f(a, b));
    }
}
struct and_fn {
    template <class T> MG_FUNC T operator()(const T& a, const T& b) const {
        return bitwise(a, b, [](const auto& x, const auto& y) { return x & y; });
    }
};
struct or_fn {
    template <class T> MG_FUNC T operator()(const T& a, const T& b) const {
        return bitwise(a, b, [](const auto& x, const auto& y) { return x | y; });
    }
};
struct xor_fn {
    template <class T> MG_FUNC T operator()(const T& a, const T& b) const {
        return bitwise(a, b, [](const auto& x, const auto& y) { return x ^ y; });
    }
};
struct min_fn {
    template <class T> MG_FUNC T operator()(const T& a, const T& b) const {
        if constexpr (detail::shape<T>::size == 0) {
            return smaller(a, b);
        } else {
            T r;
            for (int i = 0; i < detail::shape<T>::size; ++i) r.d[i] = smaller(a.d[i], b.d[i]);
            return r;
        }
    }
};
struct max_fn {
    template <class T> MG_FUNC T operator()(const T& a, const T& b) const {
        if constexpr (detail::shape<T>::size == 0) {
            return larger(a, b);
        } else {
            T r;
            for (int i = 0; i < detail::shape<T>::size; ++i) r.d[i] = larger(a.d[i], b.d[i]);
            return r;
        }
    }
};

// ---- lanes ----------------------------------------------------------------------------------------------------
// The lanes of lane's group (the SIMD-group, or its quad for W = 4) as a bit mask over the SIMD-group.
template <unsigned int W> MG_FUNC constexpr unsigned int group_mask(unsigned int lane) {
    return W == kSimdWidth ? 0xffffffffu : ((1u << W) - 1u) << (lane & ~(W - 1u));
}
// The lanes at or below `lane` (Inclusive), or strictly below it.
template <bool Inclusive> MG_FUNC constexpr unsigned int lanes_below(unsigned int lane) {
    return Inclusive ? (lane == 31 ? 0xffffffffu : (2u << lane) - 1u) : (1u << lane) - 1u;
}

// Moves: the lane of the group (0..W-1) that lane j of the group reads, given the function's parameter p.
struct pick_lane {
    static MG_FUNC unsigned int source(unsigned int, unsigned int p, unsigned int w) { return p & (w - 1u); }
};
struct pick_xor {
    static MG_FUNC unsigned int source(unsigned int j, unsigned int p, unsigned int w) { return (j ^ p) & (w - 1u); }
};
struct pick_up {
    static MG_FUNC unsigned int source(unsigned int j, unsigned int p, unsigned int) { return j >= p ? j - p : kNone; }
};
struct pick_down {
    static MG_FUNC unsigned int source(unsigned int j, unsigned int p, unsigned int w) {
        return j + p < w ? j + p : kNone;
    }
};
struct pick_rotate_up {
    static MG_FUNC unsigned int source(unsigned int j, unsigned int p, unsigned int w) { return (j - p) & (w - 1u); }
};
struct pick_rotate_down {
    static MG_FUNC unsigned int source(unsigned int j, unsigned int p, unsigned int w) { return (j + p) & (w - 1u); }
};

// simd_shuffle_and_fill_up/down: within segments of `modulo` lanes (0: the whole group), lanes shifted off one
// end are refilled from the other end of `fill`. Returns the SIMD-group lane that `lane` reads (kSimdWidth or
// more: none) and sets from_fill when it reads that lane's `fill` rather than its data.
template <bool Up, unsigned int W>
MG_FUNC unsigned int fill_source(unsigned int lane, unsigned int delta, unsigned int modulo, bool& from_fill) {
    const unsigned int base = lane & ~(W - 1u);
    const unsigned int m = modulo == 0 || modulo > W ? W : modulo;
    const unsigned int j = lane - base, segment = j - j % m, k = j % m;
    unsigned int source;
    if (Up) {
        from_fill = k < delta;
        source = segment + (from_fill ? k + m - delta : k - delta);
    } else {
        from_fill = k + delta >= m;
        source = segment + (from_fill ? k + delta - m : k + delta);
    }
    return source + base;
}

}  // namespace group
}  // namespace mg

namespace metal {

// ---- votes ------------------------------------------------------------------------------------------------------
// A ballot: bit i is lane i of the group, with the group's active lanes kept for all().
class simd_vote {
public:
    using vote_t = ulong;
    MG_FUNC constexpr explicit simd_vote(vote_t v = 0) : v_(v), active_(0xffffffffu) {}
    MG_FUNC constexpr simd_vote(vote_t v, vote_t active) : v_(v), active_(active) {}
    MG_FUNC constexpr explicit operator vote_t() const { return v_; }
    // all(): every active lane voted true; any(): some lane did.
    MG_FUNC constexpr bool all() const { return (v_ & active_) == active_; }
    MG_FUNC constexpr bool any() const { return v_ != 0; }
private:
    vote_t v_, active_;
};
class quad_vote {
public:
    using vote_t = ushort;
    MG_FUNC constexpr explicit quad_vote(vote_t v = 0) : v_(v), active_(0xf) {}
    MG_FUNC constexpr quad_vote(vote_t v, vote_t active) : v_(v), active_(active) {}
    MG_FUNC constexpr explicit operator vote_t() const { return v_; }
    MG_FUNC constexpr bool all() const { return (v_ & active_) == active_; }
    MG_FUNC constexpr bool any() const { return v_ != 0; }
private:
    vote_t v_, active_;
};

}  // namespace metal

// The moves of a group (SIMD-group P = simd, quad-group P = quad, W lanes), the same list on every target: each
// target defines MG_GROUP_MOVE(name, which lane it reads, W) and MG_GROUP_FILL(name, upward, W) its own way.
#define MG_GROUP_SHUFFLES(P, W)                                                                                     \
    MG_GROUP_MOVE(P##_shuffle, pick_lane, W)                                                                        \
    MG_GROUP_MOVE(P##_broadcast, pick_lane, W)                                                                      \
    MG_GROUP_MOVE(P##_shuffle_xor, pick_xor, W)                                                                     \
    MG_GROUP_MOVE(P##_shuffle_up, pick_up, W)                                                                       \
    MG_GROUP_MOVE(P##_shuffle_down, pick_down, W)                                                                   \
    MG_GROUP_MOVE(P##_shuffle_rotate_up, pick_rotate_up, W)                                                         \
    MG_GROUP_MOVE(P##_shuffle_rotate_down, pick_rotate_down, W)                                                     \
    MG_GROUP_FILL(P##_shuffle_and_fill_up, true, W)                                                                 \
    MG_GROUP_FILL(P##_shuffle_and_fill_down, false, W)
