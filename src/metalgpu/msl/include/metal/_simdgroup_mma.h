// metal/_simdgroup_mma.h -- SIMD-group matrix products on tensor cores: CUDA sm_80 and later, through mma.sync
// (_simdgroup_mma_cuda.h), and a CPU build that emulates those instructions to test this file without a GPU
// (_simdgroup_mma_emulated.h, under MG_EMULATE_TENSOR_CORES). Included by _simdgroup_matrix.h, after the target's
// primitives: shuffle_bits (a 32-bit value of another lane), transpose_b16 (movmatrix), round_tf32 (cvt.rna),
// mma_f16 / mma_bf16 / mma_tf32 (mma.sync.aligned.m16n8k8.row.col with float accumulators), mma_f16_k16 /
// mma_bf16_k16 (m16n8k16), load_matrix_b16 / _pair_b16 / _quad_b16 (ldmatrix .x1, .x2, .x4, at a lane's address
// of type shared_offset, from shared_address), unused_bits / unused_float (a register left as it is).
//
// Layouts. Apple's (thread_elements(), see _simdgroup_matrix.h) is not one of mma.sync's, so besides its elements
// `e` a matrix keeps `mma` (operand_copies): the same 8x8 matrix in the two layouts mma.sync reads, lane 4g + t
// holding
//   rows: row g, columns 2t and 2t + 1   (the accumulator, and the A operand: the top 8 rows of its 16)
//   cols: column g, rows 2t and 2t + 1   (the B operand)
// Loads fill all three layouts from memory, and a product writes `rows` and then `e` from it by a shuffle. The
// compiler drops what nothing reads, so a GEMM loop that loads, multiplies and stores keeps its accumulators in
// `rows` and moves no data between lanes; code that reads thread_elements() pays one shuffle per 32 bits (two for
// a float matrix) per product. A copy goes stale when a lane may write its elements (the non-const
// thread_elements()); each lane then takes the copy from `e` again, by shuffles, when every lane its elements come
// from kept it fresh. A transpose (movmatrix) makes `cols` from `rows` when a product's result is a B operand.
//
// A half or bfloat matrix loaded from threadgroup memory whose rows are 16-byte aligned takes one ldmatrix for
// `rows`, and a movmatrix for `cols` where a product reads it; one that products read only as their B operand
// (msl/operand_loads.py) the other way round (threadgroup arrays start 16-byte aligned, and the compiler often
// proves the rest and drops the check).
//
// Products. half x half and bfloat x bfloat: one m16n8k8 (exact products, float sums). Rows 8-15 of its A and C
// are registers left as they are (unused_bits), since nothing reads rows 8-15 of its result. Into a float
// matrix, a product may wait there for the next one into it, and the two then run as one m16n8k16
// (products_16bit): where the compiler can tell, as in a GEMM's unrolled loop over k. Two products into two float
// matrices that read one B matrix, written as two statements in a row (which the translator joins into one call),
// fill the two halves of one m16n8k8 (products_16bit), and two such pairs one m16n8k16. A float
// operand: TF32 tensor cores, x = hi + lo with hi and lo in TF32 (MG_SIMDGROUP_FLOAT 3, the default, see split),
// or hi alone (1: plain TF32, about 11 significant bits per product); 0 keeps float products on the shuffle path.
// The compensated product is two m16n8k8 on one A whose bottom half carries a's small part:
//   [a_hi; a_lo] x b_hi  then  [a_hi; a_lo] x b_lo + that,  d = c + (top + bottom)
// which is a_hi b on top and a_lo b below, added once, then c in float. The k index runs through the TF32
// operands as mma k = t <-> column 2t, t + 4 <-> 2t + 1, so `rows` and `cols` serve as they are.
#pragma once

#if !defined(MG_SIMDGROUP_FLOAT)
#  define MG_SIMDGROUP_FLOAT 3
#endif

namespace mg {
namespace sgm {

constexpr int exact_floats = 0, tf32_floats = 1, compensated_floats = 3;
constexpr int float_mode = MG_SIMDGROUP_FLOAT;
static_assert(float_mode == exact_floats || float_mode == tf32_floats || float_mode == compensated_floats,
              "MG_SIMDGROUP_FLOAT is 0 (exact), 1 (tf32) or 3 (3xtf32)");

template <class T> struct operand_copies {
    metal::vec<T, 2> rows;  // row lane / 4, columns 2 (lane % 4) and the next
    metal::vec<T, 2> cols;  // column lane / 4, rows 2 (lane % 4) and the next
    bool rows_fresh;        // rows holds the matrix's elements
    bool cols_fresh;
    // A float matrix may hold a half or bfloat product not yet run (products_16bit): the matrix is then
    // rows + A B, with A's rows and B's columns in 16-bit pairs, and `e` holds the sum already.
    int waiting;            // no_product, half_product or bfloat_product
    unsigned int waiting_a, waiting_b;
};
constexpr int no_product = 0, half_product = 1, bfloat_product = 2;

template <class T> constexpr bool is_tensor_type =
    detail::is_same<T, float>::value || detail::is_same<T, metal::half>::value ||
    detail::is_same<T, metal::bfloat>::value;
template <class T> constexpr bool is_wide = detail::is_same<T, float>::value;  // not exact in TF32

// Whether D = A * B + C runs on tensor cores.
template <class TD, class TA, class TB, class TC> constexpr bool on_tensor_cores() {
    if constexpr (!(is_tensor_type<TD> && is_tensor_type<TA> && is_tensor_type<TB> && is_tensor_type<TC>))
        return false;
    else if constexpr (detail::is_same<TA, TB>::value && !is_wide<TA>)
        return true;  // half x half, bfloat x bfloat
    else
        return float_mode != exact_floats;
}

template <class T> MG_SGM_FUNC unsigned int pack(const metal::vec<T, 2>& x) {
    return detail::bit_cast<unsigned short>(x[0]) | static_cast<unsigned int>(detail::bit_cast<unsigned short>(x[1])) << 16;
}
template <class T> MG_SGM_FUNC metal::vec<T, 2> unpack(unsigned int bits) {
    return metal::vec<T, 2>(detail::bit_cast<T>(static_cast<unsigned short>(bits)),
                            detail::bit_cast<T>(static_cast<unsigned short>(bits >> 16)));
}

// The two elements of lane `source` (every lane takes part).
template <class T> MG_SGM_FUNC metal::vec<T, 2> shuffle_pair(const metal::vec<T, 2>& x, unsigned int source) {
    if constexpr (sizeof(T) == 2) {
        return unpack<T>(shuffle_bits(pack(x), source));
    } else {
        return metal::vec<T, 2>(detail::bit_cast<T>(shuffle_bits(detail::bit_cast<unsigned int>(x[0]), source)),
                                detail::bit_cast<T>(shuffle_bits(detail::bit_cast<unsigned int>(x[1]), source)));
    }
}
// A flag of lane `source`. Where the compiler knows the flag (the same constant in every lane), that constant: the
// shuffle would hide it from the optimiser, which then could not drop the copy that the flag does not pick.
// NVRTC before 13.5 has no __builtin_constant_p: there the flag always takes the shuffle.
#if defined(__has_builtin)
#  if __has_builtin(__builtin_constant_p)
#    define MG_KNOWN_CONSTANT(x) __builtin_constant_p(x)
#  endif
#endif
#ifndef MG_KNOWN_CONSTANT
#  define MG_KNOWN_CONSTANT(x) false
// Nor does it fold load_copies_aligned's test of alignment, and the flags of matrices loaded behind that branch
// then take their shuffles: there loads stay scalar (a half GEMM ran twice as fast so on an H100 with NVRTC 13.0).
#  define MG_SGM_SCALAR_LOADS 1
// Nor can a product tell there whether the one before it waits (products_16bit): every product runs at once.
#  define MG_SGM_PRODUCTS_RUN_AT_ONCE 1
#endif
#if defined(MG_SGM_PRODUCTS_RUN_AT_ONCE)
constexpr bool products_wait = false;
#else
constexpr bool products_wait = true;
#endif
MG_SGM_FUNC bool shuffle_flag(bool flag, unsigned int source) {
    if (MG_KNOWN_CONSTANT(flag)) return flag;
    return shuffle_bits(flag ? 1u : 0u, source) != 0;
}

// rows -> cols: the transpose of the matrix, in 16-bit halves.
template <class T> MG_SGM_FUNC metal::vec<T, 2> transpose(const metal::vec<T, 2>& rows) {
    if constexpr (sizeof(T) == 2) {
        return unpack<T>(transpose_b16(pack(rows)));
    } else {
        const unsigned int x = detail::bit_cast<unsigned int>(rows[0]), y = detail::bit_cast<unsigned int>(rows[1]);
        const unsigned int low = transpose_b16((x & 0xffffu) | (y << 16));
        const unsigned int high = transpose_b16((x >> 16) | (y & 0xffff0000u));
        return metal::vec<T, 2>(detail::bit_cast<T>((low & 0xffffu) | (high << 16)),
                                detail::bit_cast<T>((low >> 16) | (high & 0xffff0000u)));
    }
}

template <int Kind>
MG_SGM_FUNC void mma_16bit(float (&d)[4], unsigned int a0, unsigned int a1, unsigned int b0, const float (&c)[4]) {
    if constexpr (Kind == half_product) mma_f16(d, a0, a1, b0, c);
    else mma_bf16(d, a0, a1, b0, c);
}
template <int Kind>
MG_SGM_FUNC void mma_16bit_k16(float (&d)[4], const unsigned int (&a)[4], const unsigned int (&b)[2],
                               const float (&c)[4]) {
    if constexpr (Kind == half_product) mma_f16_k16(d, a, b, c);
    else mma_bf16_k16(d, a, b, c);
}
// The kind of product waiting, as lane 0 holds it: the same in every lane, so that every lane reaches the mma.sync
// that runs it (the flag of a matrix set through thread_elements() alone, or never set, holds any value).
MG_SGM_FUNC int waiting_kind(int waiting) {
    if (MG_KNOWN_CONSTANT(waiting)) return waiting;
    return static_cast<int>(shuffle_bits(static_cast<unsigned int>(waiting), 0));
}
// rows, plus the product waiting in them (float matrices).
template <class T> MG_SGM_FUNC metal::vec<T, 2> with_waiting_product(const operand_copies<T>& c) {
    if constexpr (is_wide<T> && products_wait) {
        const int kind = waiting_kind(c.waiting);
        if (kind == half_product || kind == bfloat_product) {
            const float base[4] = {c.rows[0], c.rows[1], unused_float(), unused_float()};
            float out[4];
            if (kind == half_product) mma_16bit<half_product>(out, c.waiting_a, unused_bits(), c.waiting_b, base);
            else mma_16bit<bfloat_product>(out, c.waiting_a, unused_bits(), c.waiting_b, base);
            return metal::vec<T, 2>(out[0], out[1]);
        }
    }
    return c.rows;
}

// The matrix's elements in the rows and cols layouts: the kept copy where it is fresh, else from `e`.
template <class M> MG_SGM_FUNC auto rows_of(const M& m) {
    const unsigned int lane = simd_lane();
    const unsigned int source = lane_of(lane >> 2, (lane & 3u) * 2u);  // Apple's lane of this lane's two elements
    const auto from_elements = shuffle_pair(m.e, source);
    const auto kept = with_waiting_product(m.mma);  // in every lane: it may run an mma.sync
    return shuffle_flag(m.mma.rows_fresh, source) ? kept : from_elements;
}
template <class M> MG_SGM_FUNC auto cols_of(const M& m) {
    const unsigned int lane = simd_lane(), column = lane >> 2, row = (lane & 3u) * 2u;
    const auto from_rows = transpose(rows_of(m));
    const bool fresh = shuffle_flag(m.mma.cols_fresh, lane_of(row, column)) &&
                       shuffle_flag(m.mma.cols_fresh, lane_of(row + 1u, column));
    return fresh ? m.mma.cols : from_rows;
}

// The flags of copies just written whole: both layouts hold the matrix, no product waits in it. A load sets them
// outside its branch on alignment: where the compiler cannot decide it, they stay constants that the products'
// freshness tests fold.
template <class T> MG_SGM_FUNC void mark_fresh(operand_copies<T>& c) {
    c.rows_fresh = c.cols_fresh = true;
    c.waiting = no_product;
}

template <class T> MG_SGM_FUNC void fill(operand_copies<T>& c, T value) {
    c.rows = c.cols = metal::vec<T, 2>(value);
    mark_fresh(c);
}

template <class T> MG_SGM_FUNC void fill_diagonal(operand_copies<T>& c, T diagonal) {
    const unsigned int lane = simd_lane();
    for (unsigned int k = 0; k < 2; ++k) c.rows[k] = (lane >> 2) == (lane & 3u) * 2u + k ? diagonal : T(0);
    c.cols = c.rows;  // a diagonal matrix is its own transpose
    mark_fresh(c);
}

// Where memory row r of a matrix loaded from `source` starts in threadgroup memory (a row of the matrix, or of its
// transpose), and how far that row of another matrix lies past it, in bytes. Computed in the target's type of shared
// addresses (32 bits on CUDA) from the origins' parts: where two matrices' origins differ by a constant, so do their
// addresses, and a joined load's lanes pick their matrix by adding a constant to one address. (From 64-bit origins,
// each a 32-bit sum widened, the compiler cannot tell, and computes every address of every load anew.)
MG_SGM_FUNC shared_offset row_element(unsigned long stride, metal::ulong2 origin, unsigned int r) {
    return (shared_offset(origin.y) + r) * shared_offset(stride) + shared_offset(origin.x);
}
template <class P> MG_SGM_FUNC shared_offset row_address(P source, unsigned long stride, metal::ulong2 origin,
                                                        unsigned int r) {
    return shared_address(source) + 2u * row_element(stride, origin, r);
}
template <class P> MG_SGM_FUNC shared_offset row_distance(P from, unsigned long from_stride, metal::ulong2 from_origin,
                                                         P to, unsigned long stride, metal::ulong2 origin,
                                                         unsigned int r) {
    const auto bytes = shared_offset(reinterpret_cast<const char*>(to) - reinterpret_cast<const char*>(from));
    return bytes + 2u * (row_element(stride, origin, r) - row_element(from_stride, from_origin, r));
}

// Whether a hardware row load can read a matrix whose first memory row starts at `first` and whose rows are
// `stride` elements apart: threadgroup memory, 16-byte aligned. Tested a matrix at a time: one test of several
// addresses together can go deeper than the compiler follows an expression, and then the test (and the fallback)
// stays in the code.
template <class P> MG_SGM_FUNC bool row_loadable(P first, unsigned long stride) {
    return is_shared_address(first) && (shared_address(first) & 15u) == 0 && ((stride * 2u) & 15u) == 0;
}
// The same for a matrix loaded beside one that passed it, `distance` bytes from that one (row_distance of their
// first rows): its own start aligned, or that distance a multiple of 16 (whichever the compiler can tell: for a
// tile's rows and its columns, either).
template <class P> MG_SGM_FUNC bool row_loadable_beside(P first, unsigned long stride, shared_offset distance) {
    return is_shared_address(first) && ((distance & 15u) == 0 || (shared_address(first) & 15u) == 0) &&
           ((stride * 2u) & 15u) == 0;
}

// A register of a hardware row load as a matrix's copies: `rows`, or ColsFirst `cols`, and the other its transpose.
template <bool ColsFirst, class T> MG_SGM_FUNC void take_bits(operand_copies<T>& c, unsigned int bits) {
    c.rows = unpack<T>(ColsFirst ? transpose_b16(bits) : bits);
    c.cols = unpack<T>(ColsFirst ? bits : transpose_b16(bits));
}

// A 16-bit matrix read from threadgroup memory whose rows (of memory: the matrix's columns when transposed) are
// 16-byte aligned: one ldmatrix for `rows`, and `cols` its transpose where a product reads it; or, ColsFirst (a
// matrix that products read only as their B operand), the transposing ldmatrix for `cols`, and `rows` its
// transpose where anything reads it. False where it does not apply (other memory, other alignment, a checked
// pointer, a conversion on load).
template <bool ColsFirst, class T, class P>
MG_SGM_FUNC bool load_copies_aligned(operand_copies<T>& c, P source, unsigned long stride, metal::ulong2 origin,
                                     bool transpose) {
    if constexpr (sizeof(T) == 2 && metal::is_pointer<P>::value) {
        if constexpr (detail::is_same<detail::remove_cvref_t<decltype(*source)>, T>::value) {
            const auto first = source + (origin.y * stride + origin.x);  // where the first memory row starts
            if (!row_loadable(first, stride)) return false;
            const shared_offset row = row_address(source, stride, origin, simd_lane() & 7u);  // lanes 0-7: 8 rows
            take_bits<ColsFirst>(c, transpose != ColsFirst ? load_matrix_b16<true>(row) : load_matrix_b16<false>(row));
            return true;
        }
    }
    return false;
}

template <bool ColsFirst, class T, class P>
MG_SGM_FUNC void load_copies(operand_copies<T>& c, P source, unsigned long stride, metal::ulong2 origin,
                             bool transpose) {
    mark_fresh(c);
#if !defined(MG_SGM_SCALAR_LOADS)
    if (load_copies_aligned<ColsFirst>(c, source, stride, origin, transpose)) return;
#endif
    const unsigned int lane = simd_lane(), g = lane >> 2, t2 = (lane & 3u) * 2u;
    for (unsigned int k = 0; k < 2; ++k) {
        c.rows[k] = T(source[offset(g, t2 + k, stride, origin, transpose)]);
        c.cols[k] = T(source[offset(t2 + k, g, stride, origin, transpose)]);
    }
}

// Two 16-bit matrices loaded in a row (simdgroup_load_a_pair: the top and bottom halves of one A operand;
// simdgroup_load_b_pair, ColsFirst: the two halves of a B operand), both from threadgroup rows 16 bytes apart,
// alike transposed: one ldmatrix.x2, lanes 0-7 naming the first's rows and lanes 8-15 the second's. False where
// that does not apply.
template <bool ColsFirst, class T, class P>
MG_SGM_FUNC bool load_pair_aligned(operand_copies<T>& c1, P s1, unsigned long n1, metal::ulong2 o1, bool t1,
                                   operand_copies<T>& c2, P s2, unsigned long n2, metal::ulong2 o2, bool t2) {
    if constexpr (sizeof(T) == 2 && metal::is_pointer<P>::value) {
        if constexpr (detail::is_same<detail::remove_cvref_t<decltype(*s1)>, T>::value) {
            const auto first1 = s1 + (o1.y * n1 + o1.x);
            const auto first2 = s2 + (o2.y * n2 + o2.x);
            if (t1 != t2) return false;
            if (!row_loadable(first1, n1) || !row_loadable_beside(first2, n2, row_distance(s1, n1, o1, s2, n2, o2, 0u)))
                return false;
            const unsigned int lane = simd_lane(), r = lane & 7u;
            const shared_offset row = row_address(s1, n1, o1, r) +
                                      ((lane & 8u) != 0 ? row_distance(s1, n1, o1, s2, n2, o2, r) : 0u);
            unsigned int bits[2];
            if (t1 != ColsFirst) load_matrix_pair_b16<true>(row, bits);
            else load_matrix_pair_b16<false>(row, bits);
            take_bits<ColsFirst>(c1, bits[0]);
            take_bits<ColsFirst>(c2, bits[1]);
            return true;
        }
    }
    return false;
}

template <bool ColsFirst, class T, class P>
MG_SGM_FUNC void load_copies_pair(operand_copies<T>& c1, P s1, unsigned long n1, metal::ulong2 o1, bool t1,
                                  operand_copies<T>& c2, P s2, unsigned long n2, metal::ulong2 o2, bool t2) {
    mark_fresh(c1);
    mark_fresh(c2);
#if !defined(MG_SGM_SCALAR_LOADS)
    if (load_pair_aligned<ColsFirst>(c1, s1, n1, o1, t1, c2, s2, n2, o2, t2)) return;
#endif
    load_copies<ColsFirst>(c1, s1, n1, o1, t1);
    load_copies<ColsFirst>(c2, s2, n2, o2, t2);
}

// Four 16-bit matrices loaded in a row (simdgroup_load_a_quad: the whole A operand of a product of depth 16), as
// load_pair_aligned reads two: one ldmatrix.x4, lanes 8q to 8q + 7 naming the rows of matrix q.
template <class T, class P>
MG_SGM_FUNC bool load_quad_aligned(operand_copies<T>& c1, P s1, unsigned long n1, metal::ulong2 o1, bool t1,
                                   operand_copies<T>& c2, P s2, unsigned long n2, metal::ulong2 o2, bool t2,
                                   operand_copies<T>& c3, P s3, unsigned long n3, metal::ulong2 o3, bool t3,
                                   operand_copies<T>& c4, P s4, unsigned long n4, metal::ulong2 o4, bool t4) {
    if constexpr (sizeof(T) == 2 && metal::is_pointer<P>::value) {
        if constexpr (detail::is_same<detail::remove_cvref_t<decltype(*s1)>, T>::value) {
            const auto first1 = s1 + (o1.y * n1 + o1.x), first2 = s2 + (o2.y * n2 + o2.x);
            const auto first3 = s3 + (o3.y * n3 + o3.x), first4 = s4 + (o4.y * n4 + o4.x);
            if (t1 != t2 || t1 != t3 || t1 != t4) return false;
            if (!row_loadable(first1, n1) ||
                !row_loadable_beside(first2, n2, row_distance(s1, n1, o1, s2, n2, o2, 0u)) ||
                !row_loadable_beside(first3, n3, row_distance(s1, n1, o1, s3, n3, o3, 0u)) ||
                !row_loadable_beside(first4, n4, row_distance(s1, n1, o1, s4, n4, o4, 0u)))
                return false;
            // lanes 8q to 8q + 7 name the rows of matrix q (by two selects of two: one of four became branches)
            const unsigned int lane = simd_lane(), r = lane & 7u;
            const bool odd = (lane & 8u) != 0, high = (lane & 16u) != 0;
            const shared_offset low_distance = odd ? row_distance(s1, n1, o1, s2, n2, o2, r) : 0u;
            const shared_offset high_distance =
                odd ? row_distance(s1, n1, o1, s4, n4, o4, r) : row_distance(s1, n1, o1, s3, n3, o3, r);
            const shared_offset row = row_address(s1, n1, o1, r) + (high ? high_distance : low_distance);
            unsigned int bits[4];
            if (t1) load_matrix_quad_b16<true>(row, bits);
            else load_matrix_quad_b16<false>(row, bits);
            take_bits<false>(c1, bits[0]);
            take_bits<false>(c2, bits[1]);
            take_bits<false>(c3, bits[2]);
            take_bits<false>(c4, bits[3]);
            return true;
        }
    }
    return false;
}

template <class T, class P>
MG_SGM_FUNC void load_copies_quad(operand_copies<T>& c1, P s1, unsigned long n1, metal::ulong2 o1, bool t1,
                                  operand_copies<T>& c2, P s2, unsigned long n2, metal::ulong2 o2, bool t2,
                                  operand_copies<T>& c3, P s3, unsigned long n3, metal::ulong2 o3, bool t3,
                                  operand_copies<T>& c4, P s4, unsigned long n4, metal::ulong2 o4, bool t4) {
    mark_fresh(c1);
    mark_fresh(c2);
    mark_fresh(c3);
    mark_fresh(c4);
#if !defined(MG_SGM_SCALAR_LOADS)
    if (load_quad_aligned(c1, s1, n1, o1, t1, c2, s2, n2, o2, t2, c3, s3, n3, o3, t3, c4, s4, n4, o4, t4)) return;
#endif
    load_copies_pair<false>(c1, s1, n1, o1, t1, c2, s2, n2, o2, t2);
    load_copies_pair<false>(c3, s3, n3, o3, t3, c4, s4, n4, o4, t4);
}

template <class M, class P>
MG_SGM_FUNC void store_rows(const M& m, P destination, unsigned long stride, metal::ulong2 origin, bool transpose) {
    using U = detail::remove_cvref_t<decltype(destination[0])>;
    const unsigned int lane = simd_lane(), g = lane >> 2, t2 = (lane & 3u) * 2u;
    const auto rows = rows_of(m);
    for (unsigned int k = 0; k < 2; ++k) destination[offset(g, t2 + k, stride, origin, transpose)] = U(rows[k]);
}

// x to TF32 (10 fraction bits), to nearest, ties away from zero, in two integer operations: cvt.rna's rounding
// for finite x, where cvt.rna itself takes more. A NaN may come out as another value; x - hi is then NaN, so a
// compensated product still gives NaN.
MG_SGM_FUNC float tf32_high(float x) {
    return detail::bit_cast<float>((detail::bit_cast<unsigned int>(x) + 0x1000u) & 0xffffe000u);
}

// A float operand's TF32 parts; half and bfloat are exact in TF32. Compensated: hi = x rounded to TF32 and
// lo = x - hi (exact), which the tensor cores read with its low 13 bits dropped: |x - hi - lo| < 2^-22 |x|.
template <class T> MG_SGM_FUNC void split(const metal::vec<T, 2>& x, float (&hi)[2], float (&lo)[2]) {
    for (unsigned int k = 0; k < 2; ++k) {
        if constexpr (!is_wide<T>) {
            hi[k] = float(x[k]);
            lo[k] = 0.0f;
        } else if constexpr (float_mode == compensated_floats) {
            hi[k] = tf32_high(x[k]);
            lo[k] = x[k] - hi[k];
        } else {
            hi[k] = round_tf32(x[k]);
            lo[k] = 0.0f;
        }
    }
}

// Whether d = a * b + c may wait in d: half x half or bfloat x bfloat into float.
template <class TD, class TA, class TB, class TC> constexpr bool may_wait() {
    return is_wide<TD> && is_wide<TC> && detail::is_same<TA, TB>::value && !is_wide<TA>;
}
template <class T> constexpr int product_kind = detail::is_same<T, metal::half>::value ? half_product : bfloat_product;

// d's copies after a product into a float matrix: `rows` (plus the product waiting there, if `waiting` names one).
template <class MD>
MG_SGM_FUNC void set_product(MD& d, const metal::vec<float, 2>& rows, int waiting, unsigned int a_bits,
                             unsigned int b_bits) {
    d.mma.rows = rows;
    d.mma.waiting = waiting;
    d.mma.waiting_a = a_bits;
    d.mma.waiting_b = b_bits;
    d.mma.rows_fresh = true;
    d.mma.cols_fresh = false;  // made from rows if the result is a B operand
    const unsigned int lane = simd_lane();
    d.e = shuffle_pair(with_waiting_product(d.mma), row_of(lane) * 4u + column_of(lane) / 2u);
}

// d1 = a1 * b + c1, a half or bfloat product into a float matrix, and with Pair, d2 = a2 * b + c2 beside it.
// One product fills half an m16n8k8 (rows 0-7); a pair fills both halves, a1 and c1 rows 0-7, a2 and c2 rows 8-15.
// Two products into the same accumulator fill half an m16n8k16, which takes about three quarters of the time of
// two m16n8k8 (H100). So the products wait in d1 (and d2), and the next ones into them run both: A = [a1 a1'] (and
// [a2 a2'] below), B = [b; b'], C = the matrices' rows. Only where c's flags are constants to the compiler, as in
// straight code or a loop over k unrolled an even number of times, so that no test remains in the code, and, for
// a pair, where the compiler knows both waiting products share their B (the same value, as the halves of one pair
// do); elsewhere (a loop whose flag would alternate, a matrix some lanes wrote through thread_elements()) the
// products run at once. Whether d's product waits depends on c's `waiting` alone, so that a flag of c the compiler
// cannot know leaves d's known. Whatever reads d in between (its elements, a store, a use as an operand) adds the
// waiting product by itself, and `e` is written here as if it had run: the compiler drops both where nothing reads
// them. Every operand is read before d1 or d2 is written.
template <bool Pair, class MD, class MA, class MB, class MC>
MG_SGM_FUNC void products_16bit(MD& d1, const MA& a1, const MC& c1, MD& d2, const MA& a2, const MC& c2, const MB& b) {
    using TA = detail::remove_cvref_t<decltype(a1.e[0])>;
    constexpr int kind = product_kind<TA>;
    // c's rows first: NVRTC 13.0 then folds c's flags (and drops the shuffles behind them)
    const auto c1_rows = rows_of(c1);
    metal::vec<float, 2> c2_rows(unused_float(), unused_float());
    if constexpr (Pair) c2_rows = rows_of(c2);
    const unsigned int a1_bits = pack(rows_of(a1));
    unsigned int a2_bits = unused_bits();
    if constexpr (Pair) a2_bits = pack(rows_of(a2));
    const unsigned int b_bits = pack(cols_of(b));
    float out[4];
    bool waits = false;
    // Not const: g++ and clang evaluate a const initializer as a constant expression, where the test is false.
    bool known = products_wait && MG_KNOWN_CONSTANT(c1.mma.waiting) && (!Pair || MG_KNOWN_CONSTANT(c2.mma.waiting));
    if (known && c1.mma.waiting != kind && (!Pair || c2.mma.waiting != kind)) {
        out[0] = c1_rows[0], out[1] = c1_rows[1], out[2] = c2_rows[0], out[3] = c2_rows[1];  // no product of this
        waits = true;                                                                         // kind in c: they wait
    } else if (known && c1.mma.waiting == kind &&
               (!Pair || (c2.mma.waiting == kind && MG_KNOWN_CONSTANT(c1.mma.waiting_b == c2.mma.waiting_b) &&
                          c1.mma.waiting_b == c2.mma.waiting_b)) &&
               MG_KNOWN_CONSTANT(c1.mma.rows_fresh && (!Pair || c2.mma.rows_fresh)) && c1.mma.rows_fresh &&
               (!Pair || c2.mma.rows_fresh)) {
        // c's products of this kind and these, as one m16n8k16
        const float base[4] = {c1.mma.rows[0], c1.mma.rows[1], Pair ? c2.mma.rows[0] : unused_float(),
                               Pair ? c2.mma.rows[1] : unused_float()};
        const unsigned int a[4] = {c1.mma.waiting_a, Pair ? c2.mma.waiting_a : unused_bits(), a1_bits, a2_bits};
        const unsigned int b_pair[2] = {c1.mma.waiting_b, b_bits};
        mma_16bit_k16<kind>(out, a, b_pair, base);
    } else {  // at once (c1_rows and c2_rows hold the products that waited there, if any)
        const float base[4] = {c1_rows[0], c1_rows[1], c2_rows[0], c2_rows[1]};
        mma_16bit<kind>(out, a1_bits, a2_bits, b_bits, base);
    }
    set_product(d1, metal::vec<float, 2>(out[0], out[1]), waits ? kind : no_product, a1_bits, b_bits);
    if constexpr (Pair)
        set_product(d2, metal::vec<float, 2>(out[2], out[3]), waits ? kind : no_product, a2_bits, b_bits);
}

// A pair of float products in plain TF32: one m16n8k8 on a1's and a2's TF32 parts, then c1 and c2 added in
// float, as tensor_product does for one product.
template <class MD, class MA, class MB, class MC>
MG_SGM_FUNC void tf32_row_pair_product(MD& d1, const MA& a1, const MC& c1, MD& d2, const MA& a2, const MC& c2,
                                       const MB& b) {
    const auto c1_rows = rows_of(c1), c2_rows = rows_of(c2);
    float a1_hi[2], a2_hi[2], b_hi[2], unused[2];
    split(rows_of(a1), a1_hi, unused);
    split(rows_of(a2), a2_hi, unused);
    split(cols_of(b), b_hi, unused);
    const float a[4] = {a1_hi[0], a2_hi[0], a1_hi[1], a2_hi[1]};  // (g, k), (g + 8, k), (g, k + 4), (g + 8, k + 4)
    const float zero[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    float out[4];
    mma_tf32(out, a, b_hi, zero);
    set_product(d1, metal::vec<float, 2>(out[0] + c1_rows[0], out[1] + c1_rows[1]), no_product, 0, 0);
    set_product(d2, metal::vec<float, 2>(out[2] + c2_rows[0], out[3] + c2_rows[1]), no_product, 0, 0);
}

// d = a * b + c. Every operand is read before d is written: d may be any of them.
template <class MD, class MA, class MB, class MC>
MG_SGM_FUNC void tensor_product(MD& d, const MA& a, const MB& b, const MC& c) {
    using TD = detail::remove_cvref_t<decltype(d.e[0])>;
    using TA = detail::remove_cvref_t<decltype(a.e[0])>;
    using TB = detail::remove_cvref_t<decltype(b.e[0])>;
    using TC = detail::remove_cvref_t<decltype(c.e[0])>;
    if constexpr (may_wait<TD, TA, TB, TC>()) {
        products_16bit<false>(d, a, c, d, a, c, b);
        return;
    }
    const auto c_rows = rows_of(c);
    const float accumulator[2] = {float(c_rows[0]), float(c_rows[1])};
    const auto a_rows = rows_of(a);
    const auto b_cols = cols_of(b);
    float out[4];
    if constexpr (detail::is_same<TA, TB>::value && !is_wide<TA>) {
        const float top[4] = {accumulator[0], accumulator[1], unused_float(), unused_float()};
        mma_16bit<product_kind<TA>>(out, pack(a_rows), unused_bits(), pack(b_cols), top);
    } else {
        float a_hi[2], a_lo[2], b_hi[2], b_lo[2];
        split(a_rows, a_hi, a_lo);
        split(b_cols, b_hi, b_lo);
        const float b_high[2] = {b_hi[0], b_hi[1]};
        if constexpr (float_mode == compensated_floats) {
            const float a_parts[4] = {a_hi[0], a_lo[0], a_hi[1], a_lo[1]};  // a0..a3: (g, k), (g + 8, k), ...
            const float zero[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            mma_tf32(out, a_parts, b_high, zero);
            if constexpr (is_wide<TB>) {
                const float b_low[2] = {b_lo[0], b_lo[1]};
                const float partial[4] = {out[0], out[1], out[2], out[3]};
                mma_tf32(out, a_parts, b_low, partial);
            }
            out[0] += out[2];
            out[1] += out[3];
        } else {
            const float a_high[4] = {a_hi[0], unused_float(), a_hi[1], unused_float()};
            const float zero[4] = {0.0f, 0.0f, unused_float(), unused_float()};
            mma_tf32(out, a_high, b_high, zero);
        }
        // c is added here, rounded to nearest: the tensor cores' sums truncate, and a GEMM that keeps c in them
        // over its whole k loop drifts (four times the shuffle path's error at k = 4096).
        out[0] += accumulator[0];
        out[1] += accumulator[1];
    }
    d.mma.rows = metal::vec<TD, 2>(TD(out[0]), TD(out[1]));
    d.mma.rows_fresh = true;
    d.mma.cols_fresh = false;  // made from rows if the result is a B operand
    d.mma.waiting = no_product;
    const unsigned int lane = simd_lane();
    d.e = shuffle_pair(d.mma.rows, row_of(lane) * 4u + column_of(lane) / 2u);
}

}  // namespace sgm
}  // namespace mg
