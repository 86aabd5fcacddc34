// metal/_simdgroup_matrix.h -- Metal's 8x8 SIMD-group matrices (simdgroup_float8x8, ...), written once for both
// targets on top of simd_shuffle. Included at the end of _simdgroup_cpu.h and _cooperative_cuda.h, each of which
// defines mg::simd_lane() first.
//
// A SIMD-group holds the matrix together, two elements a lane, in Apple's layout (which kernels depend on:
// MLX's steel GEMM and attention compute the row and column of thread_elements() from the lane): lane L holds
// row (L / 16) * 4 + (L / 2) % 4, columns ((L / 8) % 2) * 4 + (L % 2) * 2 and the next. Every lane of the
// SIMD-group must take part, as in Metal. Products add in float, in the order k = 0..7, and round to the
// destination's element type at the end, on every target alike; the operands may have different element types
// (half or bfloat inputs into a float accumulator).
//
// Loads and stores are collective, as on Apple's GPUs, whose lanes run in lockstep: every lane of the SIMD-group
// has done what came before before any lane's part of a load or store, and all parts are done before any lane goes
// on. Kernels rely on it: PyTorch's int8 matrix product reads elements other lanes stored with simdgroup_store, with
// no barrier between. On the CPU the lanes are fibers that would otherwise run ahead of each other. On CUDA the
// warp's lanes reach a load together and issue it as one instruction, so only stores take the barriers there: a
// barrier around each load would keep the compiler from overlapping a GEMM's loads with its products.
//
// On CUDA sm_80 and later, products run on tensor cores (_simdgroup_mma.h): the layout above stays what
// thread_elements() shows, and the other layouts the tensor cores read are kept beside it.
#pragma once

namespace mg {
namespace sgm {
// Where lane's two elements lie: its row, and the column of the first.
MG_FUNC constexpr unsigned int row_of(unsigned int lane) { return (lane >> 4) * 4u + ((lane >> 1) & 3u); }
MG_FUNC constexpr unsigned int column_of(unsigned int lane) { return ((lane >> 3) & 1u) * 4u + (lane & 1u) * 2u; }
// The lane that holds element (row, column).
MG_FUNC constexpr unsigned int lane_of(unsigned int row, unsigned int column) {
    return (row >> 2) * 16u + (row & 3u) * 2u + (column >> 2) * 8u + ((column >> 1) & 1u);
}
// A value of another lane, as a float. Every lane takes part in a matrix operation (Metal requires it), so on
// CUDA the warp's own shuffle serves, without the partial-group bookkeeping of simd_shuffle: a product of 8x8
// matrices is 24 shuffles, and a GEMM kernel unrolls hundreds of products.
#if defined(MG_TARGET_CUDA)
__device__ __forceinline__ float shuffle(float v, unsigned int lane) {
    return __shfl_sync(__activemask(), v, int(lane));
}
#else
inline float shuffle(float v, unsigned int lane) { return metal::simd_shuffle(v, ushort(lane)); }
#endif
// Where element (row, column) of the matrix lies in memory, for a load or a store at `origin` (x: column, y: row)
// with `stride` elements per row; `transpose` reads the block of memory as the matrix's transpose.
MG_FUNC unsigned long offset(unsigned int row, unsigned int column, unsigned long stride, metal::ulong2 origin,
                             bool transpose) {
    return transpose ? (origin.y + column) * stride + origin.x + row : (origin.y + row) * stride + origin.x + column;
}
}  // namespace sgm
}  // namespace mg

// The tensor-core path decides what a product does from flags the compiler knows only once every function on the
// way is inlined, as CUDA's __forceinline__ does: the CPU's emulation of it inlines them too.
#if defined(MG_TARGET_CPU) && defined(MG_EMULATE_TENSOR_CORES)
#  define MG_SGM_FUNC __attribute__((always_inline)) inline
#else
#  define MG_SGM_FUNC MG_FUNC
#endif
#if defined(MG_TARGET_CUDA) && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#  include "_simdgroup_mma_cuda.h"
#  define MG_SGM_TENSOR_CORES 1
#elif defined(MG_TARGET_CPU) && defined(MG_EMULATE_TENSOR_CORES)
#  include "_simdgroup_mma_emulated.h"
#  define MG_SGM_TENSOR_CORES 1
#endif
#if defined(MG_SGM_TENSOR_CORES)
#  include "_simdgroup_mma.h"
#endif

namespace metal {

template <class T, int Cols, int Rows = Cols> struct simdgroup_matrix {
    static_assert(Cols == 8 && Rows == 8, "metalgpu implements 8x8 SIMD-group matrices");
    vec<T, 2> e;  // this lane's elements (see the layout above)
#if defined(MG_SGM_TENSOR_CORES)
    mg::sgm::operand_copies<T> mma;  // the same matrix in the tensor cores' layouts (_simdgroup_mma.h)
#endif

    simdgroup_matrix() = default;
    // A diagonal matrix holding `diagonal` (Metal's scalar constructor).
    MG_SGM_FUNC explicit simdgroup_matrix(T diagonal) {
        const unsigned int lane = mg::simd_lane();
        const unsigned int row = mg::sgm::row_of(lane), column = mg::sgm::column_of(lane);
        for (unsigned int k = 0; k < 2; ++k) e[k] = row == column + k ? diagonal : T(0);
#if defined(MG_SGM_TENSOR_CORES)
        mg::sgm::fill_diagonal(mma, diagonal);
#endif
    }
    MG_SGM_FUNC vec<T, 2>& thread_elements() {
#if defined(MG_SGM_TENSOR_CORES)
        mma.rows_fresh = mma.cols_fresh = false;  // the caller may write through the reference
#endif
        return e;
    }
    MG_SGM_FUNC const vec<T, 2>& thread_elements() const { return e; }
};

typedef simdgroup_matrix<float, 8, 8> simdgroup_float8x8;
typedef simdgroup_matrix<half, 8, 8> simdgroup_half8x8;
typedef simdgroup_matrix<bfloat, 8, 8> simdgroup_bfloat8x8;

}  // namespace metal

#if defined(MG_SGM_TENSOR_CORES)
namespace mg {
namespace sgm {
template <class M> struct element_of { using type = void; };
template <class T> struct element_of<metal::simdgroup_matrix<T, 8, 8>> { using type = T; };
// Whether d1 = a1 * b1 + c1 and d2 = a2 * b2 + c2 may run as one instruction when b1 and b2 are one matrix:
// half x half or bfloat x bfloat (or float x float in plain TF32), both into float matrices.
template <class D1, class A1, class B1, class C1, class D2, class A2, class B2, class C2>
constexpr bool rows_pair_up() {
    using T = typename element_of<A1>::type;
    return (detail::is_same<T, metal::half>::value || detail::is_same<T, metal::bfloat>::value ||
            (detail::is_same<T, float>::value && float_mode == tf32_floats)) &&
           detail::is_same<T, typename element_of<A2>::type>::value &&
           detail::is_same<T, typename element_of<B1>::type>::value &&
           detail::is_same<T, typename element_of<B2>::type>::value &&
           detail::is_same<float, typename element_of<D1>::type>::value &&
           detail::is_same<float, typename element_of<C1>::type>::value &&
           detail::is_same<float, typename element_of<D2>::type>::value &&
           detail::is_same<float, typename element_of<C2>::type>::value;
}
}  // namespace sgm
}  // namespace mg
#endif

namespace mg {
namespace sgm {
// On the CPU, whose lanes are threads, the SIMD-group meets before and after a load: it reads what other lanes
// wrote before it, and nothing a lane writes after it.
MG_SGM_FUNC void load_fence() {
#if !defined(MG_TARGET_CUDA)
    metal::simdgroup_barrier(metal::mem_flags::mem_threadgroup);
#endif
}

// The elements `e` of a matrix as simdgroup_load reads them.
template <class T, int Cols, int Rows, class P>
MG_SGM_FUNC void load_elements(metal::simdgroup_matrix<T, Cols, Rows>& d, P source, metal::ulong elements_per_row,
                               metal::ulong2 matrix_origin, bool transpose_matrix) {
    const unsigned int lane = mg::simd_lane();
    const unsigned int row = mg::sgm::row_of(lane), column = mg::sgm::column_of(lane);
    for (unsigned int k = 0; k < 2; ++k)
        d.e[k] = T(source[mg::sgm::offset(row, column + k, elements_per_row, matrix_origin, transpose_matrix)]);
}

// simdgroup_load, and two in a row of matrices of one type (msl/operand_loads.py joins such loads). ColsFirst:
// products read the matrices only as their B operand, so a hardware row load reads them in that operand's layout
// and the other layout is its transpose: the same values.
template <bool ColsFirst, class T, int Cols, int Rows, class P>
MG_SGM_FUNC void load_matrix(metal::simdgroup_matrix<T, Cols, Rows>& d, P source, metal::ulong elements_per_row,
                             metal::ulong2 matrix_origin, bool transpose_matrix) {
    load_fence();
    load_elements(d, source, elements_per_row, matrix_origin, transpose_matrix);
#if defined(MG_SGM_TENSOR_CORES)
    if constexpr (mg::sgm::is_tensor_type<T>)
        mg::sgm::load_copies<ColsFirst>(d.mma, source, elements_per_row, matrix_origin, transpose_matrix);
#endif
    load_fence();
}

template <bool ColsFirst, class M1, class P1, class M2, class P2>
MG_SGM_FUNC void load_matrix_pair(M1& d1, P1 source1, metal::ulong elements_per_row1, metal::ulong2 matrix_origin1,
                                  bool transpose_matrix1, M2& d2, P2 source2, metal::ulong elements_per_row2,
                                  metal::ulong2 matrix_origin2, bool transpose_matrix2) {
#if defined(MG_SGM_TENSOR_CORES)
    if constexpr (detail::is_same<M1, M2>::value && detail::is_same<P1, P2>::value &&
                  is_tensor_type<typename element_of<M1>::type>) {
        load_fence();
        load_elements(d1, source1, elements_per_row1, matrix_origin1, transpose_matrix1);
        load_elements(d2, source2, elements_per_row2, matrix_origin2, transpose_matrix2);
        load_copies_pair<ColsFirst>(d1.mma, source1, elements_per_row1, matrix_origin1, transpose_matrix1, d2.mma,
                                    source2, elements_per_row2, matrix_origin2, transpose_matrix2);
        load_fence();
        return;
    }
#endif
    load_matrix<ColsFirst>(d1, source1, elements_per_row1, matrix_origin1, transpose_matrix1);
    load_matrix<ColsFirst>(d2, source2, elements_per_row2, matrix_origin2, transpose_matrix2);
}
}  // namespace sgm
}  // namespace mg

namespace metal {

template <class T, int Cols, int Rows = Cols>
MG_SGM_FUNC simdgroup_matrix<T, Cols, Rows> make_filled_simdgroup_matrix(const T value) {
    simdgroup_matrix<T, Cols, Rows> m;
    m.e[0] = m.e[1] = value;
#if defined(MG_SGM_TENSOR_CORES)
    mg::sgm::fill(m.mma, value);
#endif
    return m;
}

// Pointers into device, threadgroup or constant memory: one template, as the address spaces are one on our targets.
// `source` and `destination` are indexed (a plain pointer, or the checked pointer of a cuda debug build).
template <class T, int Cols, int Rows, class P>
MG_SGM_FUNC void simdgroup_load(simdgroup_matrix<T, Cols, Rows>& d, P source, ulong elements_per_row = Cols,
                                ulong2 matrix_origin = ulong2(0), bool transpose_matrix = false) {
    mg::sgm::load_matrix<false>(d, source, elements_per_row, matrix_origin, transpose_matrix);
}
// simdgroup_load of a matrix that products read only as their B operand: msl/operand_loads.py names such loads so.
template <class T, int Cols, int Rows, class P>
MG_SGM_FUNC void simdgroup_load_b_operand(simdgroup_matrix<T, Cols, Rows>& d, P source,
                                          ulong elements_per_row = Cols, ulong2 matrix_origin = ulong2(0),
                                          bool transpose_matrix = false) {
    mg::sgm::load_matrix<true>(d, source, elements_per_row, matrix_origin, transpose_matrix);
}

// Loads in a row that msl/operand_loads.py joins, each the loads it joins, in order. On tensor cores the matrices,
// of one 16-bit type from aligned threadgroup rows, take one hardware row load whose registers are, as they are,
// the operand of the instruction that reads them:
// - simdgroup_load_a_pair: the top and bottom halves of an A operand (a pair of products, msl/product_pairs.py);
// - simdgroup_load_a_quad: those of two such pairs into the same matrices, the second after the first, which a
//   tensor core runs as one product of depth 16: its whole A operand;
// - simdgroup_load_b_pair: two matrices that products read only as their B operand, the second's products into
//   the matrices of the first's, after them: the two halves of that deeper product's B operand.
template <class M1, class P1, class M2, class P2>
MG_SGM_FUNC void simdgroup_load_a_pair(M1& d1, P1 source1, ulong elements_per_row1, ulong2 matrix_origin1,
                                       bool transpose_matrix1, M2& d2, P2 source2, ulong elements_per_row2,
                                       ulong2 matrix_origin2, bool transpose_matrix2) {
    mg::sgm::load_matrix_pair<false>(d1, source1, elements_per_row1, matrix_origin1, transpose_matrix1, d2, source2,
                                     elements_per_row2, matrix_origin2, transpose_matrix2);
}

template <class M1, class P1, class M2, class P2>
MG_SGM_FUNC void simdgroup_load_b_pair(M1& d1, P1 source1, ulong elements_per_row1, ulong2 matrix_origin1,
                                       bool transpose_matrix1, M2& d2, P2 source2, ulong elements_per_row2,
                                       ulong2 matrix_origin2, bool transpose_matrix2) {
    mg::sgm::load_matrix_pair<true>(d1, source1, elements_per_row1, matrix_origin1, transpose_matrix1, d2, source2,
                                    elements_per_row2, matrix_origin2, transpose_matrix2);
}

template <class M1, class P1, class M2, class P2, class M3, class P3, class M4, class P4>
MG_SGM_FUNC void simdgroup_load_a_quad(M1& d1, P1 source1, ulong elements_per_row1, ulong2 matrix_origin1,
                                       bool transpose_matrix1, M2& d2, P2 source2, ulong elements_per_row2,
                                       ulong2 matrix_origin2, bool transpose_matrix2, M3& d3, P3 source3,
                                       ulong elements_per_row3, ulong2 matrix_origin3, bool transpose_matrix3,
                                       M4& d4, P4 source4, ulong elements_per_row4, ulong2 matrix_origin4,
                                       bool transpose_matrix4) {
#if defined(MG_SGM_TENSOR_CORES)
    if constexpr (mg::detail::is_same<M1, M2>::value && mg::detail::is_same<M1, M3>::value &&
                  mg::detail::is_same<M1, M4>::value && mg::detail::is_same<P1, P2>::value &&
                  mg::detail::is_same<P1, P3>::value && mg::detail::is_same<P1, P4>::value &&
                  mg::sgm::is_tensor_type<typename mg::sgm::element_of<M1>::type>) {
        mg::sgm::load_fence();
        mg::sgm::load_elements(d1, source1, elements_per_row1, matrix_origin1, transpose_matrix1);
        mg::sgm::load_elements(d2, source2, elements_per_row2, matrix_origin2, transpose_matrix2);
        mg::sgm::load_elements(d3, source3, elements_per_row3, matrix_origin3, transpose_matrix3);
        mg::sgm::load_elements(d4, source4, elements_per_row4, matrix_origin4, transpose_matrix4);
        mg::sgm::load_copies_quad(d1.mma, source1, elements_per_row1, matrix_origin1, transpose_matrix1, d2.mma,
                                  source2, elements_per_row2, matrix_origin2, transpose_matrix2, d3.mma, source3,
                                  elements_per_row3, matrix_origin3, transpose_matrix3, d4.mma, source4,
                                  elements_per_row4, matrix_origin4, transpose_matrix4);
        mg::sgm::load_fence();
        return;
    }
#endif
    simdgroup_load_a_pair(d1, source1, elements_per_row1, matrix_origin1, transpose_matrix1, d2, source2,
                          elements_per_row2, matrix_origin2, transpose_matrix2);
    simdgroup_load_a_pair(d3, source3, elements_per_row3, matrix_origin3, transpose_matrix3, d4, source4,
                          elements_per_row4, matrix_origin4, transpose_matrix4);
}

template <class T, int Cols, int Rows, class P>
MG_SGM_FUNC void simdgroup_store(const simdgroup_matrix<T, Cols, Rows>& a, P destination,
                                 ulong elements_per_row = Cols, ulong2 matrix_origin = ulong2(0),
                                 bool transpose_matrix = false) {
    using U = mg::detail::remove_cvref_t<decltype(destination[0])>;
    const unsigned int lane = mg::simd_lane();
    const unsigned int row = mg::sgm::row_of(lane), column = mg::sgm::column_of(lane);
    simdgroup_barrier(mem_flags::mem_threadgroup);
#if defined(MG_SGM_TENSOR_CORES)
    if constexpr (mg::sgm::is_tensor_type<T>) {  // from the tensor cores' layout: a product's result stays there
        mg::sgm::store_rows(a, destination, elements_per_row, matrix_origin, transpose_matrix);
        simdgroup_barrier(mem_flags::mem_threadgroup);
        return;
    }
#endif
    for (unsigned int k = 0; k < 2; ++k)
        destination[mg::sgm::offset(row, column + k, elements_per_row, matrix_origin, transpose_matrix)] = U(a.e[k]);
    simdgroup_barrier(mem_flags::mem_threadgroup);
}

// d = a * b + c. For each k, lane L reads a(row, k) from the lane that holds it, and b(k, column), b(k, column + 1)
// from the lane of row k that holds the same columns as L (L's column bits, 8 and 1, on k's row lane).
template <class TD, class TA, class TB, class TC>
MG_SGM_FUNC void simdgroup_multiply_accumulate(simdgroup_matrix<TD, 8, 8>& d, const simdgroup_matrix<TA, 8, 8>& a,
                                               const simdgroup_matrix<TB, 8, 8>& b,
                                               const simdgroup_matrix<TC, 8, 8>& c) {
#if defined(MG_SGM_TENSOR_CORES)
    if constexpr (mg::sgm::on_tensor_cores<TD, TA, TB, TC>()) {
        mg::sgm::tensor_product(d, a, b, c);
        return;
    }
#endif
    const unsigned int lane = mg::simd_lane(), row = mg::sgm::row_of(lane);
    float sum0 = float(c.e[0]), sum1 = float(c.e[1]);
    for (unsigned int k = 0; k < 8; ++k) {
        const float left = mg::sgm::shuffle(float(a.e[k & 1u]), mg::sgm::lane_of(row, k));
        const unsigned int right = mg::sgm::lane_of(k, 0) | (lane & 9u);
        sum0 = fma(left, mg::sgm::shuffle(float(b.e[0]), right), sum0);
        sum1 = fma(left, mg::sgm::shuffle(float(b.e[1]), right), sum1);
    }
    d.e[0] = TD(sum0);
    d.e[1] = TD(sum1);
#if defined(MG_SGM_TENSOR_CORES)
    d.mma.rows_fresh = d.mma.cols_fresh = false;
    d.mma.waiting = mg::sgm::no_product;
#endif
}

// Two simdgroup_multiply_accumulate statements in a row, which the translator joins into this call
// (msl/product_pairs.py): what the two do in order. On tensor cores, two half or bfloat products into float
// matrices that read the same B matrix (or float ones in plain TF32), where the first's result is not an operand of
// the second, run as one instruction (products_16bit). The objects' addresses decide it, which the compiler knows
// where the operands are named by constant indices, as in an unrolled loop.
template <class D1, class A1, class B1, class C1, class D2, class A2, class B2, class C2>
MG_SGM_FUNC void simdgroup_multiply_accumulate_pair(D1& d1, const A1& a1, const B1& b1, const C1& c1, D2& d2,
                                                    const A2& a2, const B2& b2, const C2& c2) {
#if defined(MG_SGM_TENSOR_CORES)
    if constexpr (mg::sgm::rows_pair_up<D1, A1, B1, C1, D2, A2, B2, C2>()) {
        const void* const first = &d1;
        if (static_cast<const void*>(&b1) == &b2 && first != &d2 && first != &c2) {
            if constexpr (mg::sgm::is_wide<typename mg::sgm::element_of<A1>::type>)
                mg::sgm::tf32_row_pair_product(d1, a1, c1, d2, a2, c2, b1);
            else
                mg::sgm::products_16bit<true>(d1, a1, c1, d2, a2, c2, b1);
            return;
        }
    }
#endif
    simdgroup_multiply_accumulate(d1, a1, b1, c1);
    simdgroup_multiply_accumulate(d2, a2, b2, c2);
}

template <class TD, class TA, class TB>
MG_SGM_FUNC void simdgroup_multiply(simdgroup_matrix<TD, 8, 8>& d, const simdgroup_matrix<TA, 8, 8>& a,
                                    const simdgroup_matrix<TB, 8, 8>& b) {
    simdgroup_multiply_accumulate(d, a, b, make_filled_simdgroup_matrix<TD, 8, 8>(TD(0)));
}

template <class T>
MG_FUNC simdgroup_matrix<T, 8, 8> operator*(const simdgroup_matrix<T, 8, 8>& a, const simdgroup_matrix<T, 8, 8>& b) {
    simdgroup_matrix<T, 8, 8> d;
    simdgroup_multiply(d, a, b);
    return d;
}

}  // namespace metal
