// metal/_simdgroup_matrix.h -- Metal's 8x8 SIMD-group matrices (simdgroup_float8x8, ...), written once for both
// targets on top of simd_shuffle. Included at the end of _simdgroup_cpu.h and _cooperative_cuda.h, each of which
// defines mg::simd_lane() first.
//
// A SIMD-group holds the matrix together: lane L keeps the two elements 2L and 2L+1 of its 64, in row-major order
// (row L / 4, columns 2 (L % 4) and the next). Metal leaves this layout to the implementation; loads, stores and
// products here all use this one. Every lane of the SIMD-group must take part, as in Metal. Products add in
// float, in the order k = 0..7, and round to the element type at the end, on every target alike.
#pragma once

namespace metal {

template <class T, int Cols, int Rows> struct simdgroup_matrix {
    static_assert(Cols == 8 && Rows == 8, "metalgpu implements 8x8 SIMD-group matrices");
    T e[2];  // this lane's elements: row-major indices 2 * lane and 2 * lane + 1

    simdgroup_matrix() = default;
    // A diagonal matrix holding `diagonal` (Metal's scalar constructor).
    MG_FUNC explicit simdgroup_matrix(T diagonal) {
        const unsigned int first = 2u * mg::simd_lane();
        for (unsigned int k = 0; k < 2; ++k) e[k] = (first + k) / 8u == (first + k) % 8u ? diagonal : T(0);
    }
    MG_FUNC vec<T, 2> thread_elements() const { return vec<T, 2>(e[0], e[1]); }
};

typedef simdgroup_matrix<float, 8, 8> simdgroup_float8x8;
typedef simdgroup_matrix<half, 8, 8> simdgroup_half8x8;
typedef simdgroup_matrix<bfloat, 8, 8> simdgroup_bfloat8x8;

template <class T, int Cols, int Rows>
MG_FUNC simdgroup_matrix<T, Cols, Rows> make_filled_simdgroup_matrix(T value) {
    simdgroup_matrix<T, Cols, Rows> m;
    m.e[0] = m.e[1] = value;
    return m;
}

namespace detail_sgm {
// Where element (row, column) of the matrix lies in memory, for a load or a store at `origin` (x: column, y: row)
// with `stride` elements per row; `transpose` reads the block of memory as the matrix's transpose.
MG_FUNC unsigned long offset(unsigned int row, unsigned int column, unsigned long stride, ulong2 origin,
                             bool transpose) {
    return transpose ? (origin.y + column) * stride + origin.x + row : (origin.y + row) * stride + origin.x + column;
}
}  // namespace detail_sgm

// Pointers into device, threadgroup or constant memory: one template, as the address spaces are one on our targets.
template <class T, int Cols, int Rows, class U>
MG_FUNC void simdgroup_load(simdgroup_matrix<T, Cols, Rows>& d, const U* source, ulong elements_per_row = Cols,
                            ulong2 matrix_origin = ulong2(0), bool transpose_matrix = false) {
    const unsigned int first = 2u * mg::simd_lane();
    for (unsigned int k = 0; k < 2; ++k)
        d.e[k] = T(source[detail_sgm::offset((first + k) / 8u, (first + k) % 8u, elements_per_row, matrix_origin,
                                             transpose_matrix)]);
}

template <class T, int Cols, int Rows, class U>
MG_FUNC void simdgroup_store(const simdgroup_matrix<T, Cols, Rows>& a, U* destination,
                             ulong elements_per_row = Cols, ulong2 matrix_origin = ulong2(0),
                             bool transpose_matrix = false) {
    const unsigned int first = 2u * mg::simd_lane();
    for (unsigned int k = 0; k < 2; ++k)
        destination[detail_sgm::offset((first + k) / 8u, (first + k) % 8u, elements_per_row, matrix_origin,
                                       transpose_matrix)] = U(a.e[k]);
}

// d = a * b + c. Lane L computes row L / 4, columns 2 (L % 4) and the next: a's row comes from lanes 4 (L / 4) ..
// 4 (L / 4) + 3, b's two columns from lanes L % 4, 4 + L % 4, ..., one shuffle each per k.
template <class T, int Cols, int Rows>
MG_FUNC void simdgroup_multiply_accumulate(simdgroup_matrix<T, Cols, Rows>& d,
                                           const simdgroup_matrix<T, Cols, Rows>& a,
                                           const simdgroup_matrix<T, Cols, Rows>& b,
                                           const simdgroup_matrix<T, Cols, Rows>& c) {
    const unsigned int lane = mg::simd_lane(), row = lane / 4u, pair = lane % 4u;
    float sum0 = float(c.e[0]), sum1 = float(c.e[1]);
    for (unsigned int k = 0; k < 8; ++k) {
        const float left = float(simd_shuffle(a.e[k & 1u], ushort(4u * row + k / 2u)));
        sum0 = fma(left, float(simd_shuffle(b.e[0], ushort(4u * k + pair))), sum0);
        sum1 = fma(left, float(simd_shuffle(b.e[1], ushort(4u * k + pair))), sum1);
    }
    d.e[0] = T(sum0);
    d.e[1] = T(sum1);
}

template <class T, int Cols, int Rows>
MG_FUNC void simdgroup_multiply(simdgroup_matrix<T, Cols, Rows>& d,
                                const simdgroup_matrix<T, Cols, Rows>& a,
                                const simdgroup_matrix<T, Cols, Rows>& b) {
    simdgroup_multiply_accumulate(d, a, b, make_filled_simdgroup_matrix<T, Cols, Rows>(T(0)));
}

}  // namespace metal
