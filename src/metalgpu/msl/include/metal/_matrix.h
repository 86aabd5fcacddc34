// metal/_matrix.h -- matrix<T, C, R> (C columns of R rows, column-major) and the names floatCxR, halfCxR.
//
// Layout, as in Metal: an array of C column vectors vec<T, R>, so float3x3 is 48 bytes (three 16-byte float3)
// and aligned as its column. m[i] is column i, m[i][j] the element in column i, row j.
// Constructors: matrix(s) puts s on the diagonal (zeros elsewhere); matrix(c0, ..., c{C-1}) takes columns;
// matrix(s0, ..., s{C*R-1}) takes elements column by column; matrix<T, C, R>(other) converts the element type.
// Operators: + and - of equal shapes, * by a scalar on either side, m * v (v has C components, gives R),
// v * m (v has R components, gives C), m * n (C x R times K x C gives K x R); transpose and determinant.
#pragma once

namespace metal {

template <class T, int C, int R> struct matrix;

}  // namespace metal

namespace mg {
namespace detail {
template <class T, int C, int R, class... A> struct matrix_args {
    static constexpr bool columns =
        sizeof...(A) == C && ((!is_arithmetic<A>::value && is_convertible<const A&, metal::vec<T, R>>::value) && ...);
    static constexpr bool scalars = sizeof...(A) == C * R && (is_arithmetic<A>::value && ...);
};
}  // namespace detail
}  // namespace mg

namespace metal {

template <class T, int C, int R> struct matrix {
    static_assert(C >= 2 && C <= 4 && R >= 2 && R <= 4, "Metal matrices have 2 to 4 columns and rows");
    using column_type = vec<T, R>;
    column_type columns[C];

    matrix() = default;
    MG_FUNC explicit matrix(T s) {
        for (int i = 0; i < C; ++i)
            for (int j = 0; j < R; ++j) columns[i].d[j] = i == j ? s : T(0);
    }
    template <class... A, mg::detail::enable_if_t<(sizeof...(A) > 1) && mg::detail::matrix_args<T, C, R, A...>::columns, int> = 0>
    MG_FUNC matrix(const A&... cols) : columns{column_type(cols)...} {}
    template <class... A, mg::detail::enable_if_t<mg::detail::matrix_args<T, C, R, A...>::scalars, int> = 0>
    MG_FUNC matrix(const A&... s) {
        const T flat[C * R] = {T(s)...};
        for (int i = 0; i < C; ++i)
            for (int j = 0; j < R; ++j) columns[i].d[j] = flat[i * R + j];
    }
    template <class U, mg::detail::enable_if_t<!mg::detail::is_same<U, T>::value, int> = 0>
    MG_FUNC explicit matrix(const matrix<U, C, R>& m) {
        for (int i = 0; i < C; ++i) columns[i] = column_type(m.columns[i]);
    }

    MG_FUNC column_type& operator[](int i) { return columns[i]; }
    MG_FUNC const column_type& operator[](int i) const { return columns[i]; }

    MG_FUNC matrix& operator+=(const matrix& m) { return *this = *this + m; }
    MG_FUNC matrix& operator-=(const matrix& m) { return *this = *this - m; }
    MG_FUNC matrix& operator*=(T s) { return *this = *this * s; }
    MG_FUNC matrix& operator*=(const matrix<T, C, C>& m) { return *this = *this * m; }

    friend MG_FUNC matrix operator+(const matrix& a, const matrix& b) {
        matrix r;
        for (int i = 0; i < C; ++i) r.columns[i] = a.columns[i] + b.columns[i];
        return r;
    }
    friend MG_FUNC matrix operator-(const matrix& a, const matrix& b) {
        matrix r;
        for (int i = 0; i < C; ++i) r.columns[i] = a.columns[i] - b.columns[i];
        return r;
    }
    friend MG_FUNC matrix operator-(const matrix& a) {
        matrix r;
        for (int i = 0; i < C; ++i) r.columns[i] = -a.columns[i];
        return r;
    }
    friend MG_FUNC matrix operator*(const matrix& a, T s) {
        matrix r;
        for (int i = 0; i < C; ++i) r.columns[i] = a.columns[i] * s;
        return r;
    }
    friend MG_FUNC matrix operator*(T s, const matrix& a) { return a * s; }
    // m * v: the columns weighted by the components of v.
    friend MG_FUNC column_type operator*(const matrix& m, const vec<T, C>& v) {
        column_type r = m.columns[0] * v.d[0];
        for (int i = 1; i < C; ++i) r = r + m.columns[i] * v.d[i];
        return r;
    }
    // v * m: component i is dot(v, column i).
    friend MG_FUNC vec<T, C> operator*(const column_type& v, const matrix& m) {
        vec<T, C> r;
        for (int i = 0; i < C; ++i) {
            T s = v.d[0] * m.columns[i].d[0];
            for (int j = 1; j < R; ++j) s = T(s + v.d[j] * m.columns[i].d[j]);
            r.d[i] = s;
        }
        return r;
    }
    template <int K> friend MG_FUNC matrix<T, K, R> operator*(const matrix& a, const matrix<T, K, C>& b) {
        matrix<T, K, R> r;
        for (int k = 0; k < K; ++k) r.columns[k] = a * b.columns[k];
        return r;
    }
};

template <class T, int C, int R> MG_FUNC matrix<T, R, C> transpose(const matrix<T, C, R>& m) {
    matrix<T, R, C> r;
    for (int i = 0; i < C; ++i)
        for (int j = 0; j < R; ++j) r.columns[j].d[i] = m.columns[i].d[j];
    return r;
}

template <class T> MG_FUNC T determinant(const matrix<T, 2, 2>& m) {
    return T(m[0].d[0] * m[1].d[1] - m[1].d[0] * m[0].d[1]);
}
template <class T> MG_FUNC T determinant(const matrix<T, 3, 3>& m) {
    return T(dot(m[0], cross(m[1], m[2])));
}
// 4x4: Laplace expansion along column 0, with the 2x2 minors of columns 2 and 3 shared.
template <class T> MG_FUNC T determinant(const matrix<T, 4, 4>& m) {
    const auto minor = [&m](int a, int b) { return T(m[2].d[a] * m[3].d[b] - m[2].d[b] * m[3].d[a]); };
    const T m01 = minor(0, 1), m02 = minor(0, 2), m03 = minor(0, 3);
    const T m12 = minor(1, 2), m13 = minor(1, 3), m23 = minor(2, 3);
    const T c0 = T(m[1].d[1] * m23 - m[1].d[2] * m13 + m[1].d[3] * m12);
    const T c1 = T(m[1].d[0] * m23 - m[1].d[2] * m03 + m[1].d[3] * m02);
    const T c2 = T(m[1].d[0] * m13 - m[1].d[1] * m03 + m[1].d[3] * m01);
    const T c3 = T(m[1].d[0] * m12 - m[1].d[1] * m02 + m[1].d[2] * m01);
    return T(m[0].d[0] * c0 - m[0].d[1] * c1 + m[0].d[2] * c2 - m[0].d[3] * c3);
}

#define MG_MATRIX_NAMES(T)                                                                                  \
    typedef matrix<T, 2, 2> T##2x2;                                                                        \
    typedef matrix<T, 2, 3> T##2x3;                                                                        \
    typedef matrix<T, 2, 4> T##2x4;                                                                        \
    typedef matrix<T, 3, 2> T##3x2;                                                                        \
    typedef matrix<T, 3, 3> T##3x3;                                                                        \
    typedef matrix<T, 3, 4> T##3x4;                                                                        \
    typedef matrix<T, 4, 2> T##4x2;                                                                        \
    typedef matrix<T, 4, 3> T##4x3;                                                                        \
    typedef matrix<T, 4, 4> T##4x4;
MG_MATRIX_NAMES(float)
MG_MATRIX_NAMES(half)
#undef MG_MATRIX_NAMES

}  // namespace metal
