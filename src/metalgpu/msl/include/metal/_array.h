// metal/_array.h -- metal::array<T, N> (a fixed-size aggregate array, as std::array) and metal::uniform<T> (a value
// the same in every thread; here only a marker, converting to and from T, so arithmetic on it is T's).
#pragma once

namespace metal {

template <class T, size_t N> struct array {
    T _M_elems[N > 0 ? N : 1];  // public: array is an aggregate, so `array<T, 2> a = {x, y};` initialises it

    MG_FUNC constexpr T& operator[](size_t i) { return _M_elems[i]; }
    MG_FUNC constexpr const T& operator[](size_t i) const { return _M_elems[i]; }
    MG_FUNC constexpr T& front() { return _M_elems[0]; }
    MG_FUNC constexpr const T& front() const { return _M_elems[0]; }
    MG_FUNC constexpr T& back() { return _M_elems[N - 1]; }
    MG_FUNC constexpr const T& back() const { return _M_elems[N - 1]; }
    MG_FUNC constexpr T* data() { return _M_elems; }
    MG_FUNC constexpr const T* data() const { return _M_elems; }
    MG_FUNC constexpr T* begin() { return _M_elems; }
    MG_FUNC constexpr const T* begin() const { return _M_elems; }
    MG_FUNC constexpr T* end() { return _M_elems + N; }
    MG_FUNC constexpr const T* end() const { return _M_elems + N; }
    static MG_FUNC constexpr size_t size() { return N; }
    static MG_FUNC constexpr size_t max_size() { return N; }
    static MG_FUNC constexpr bool empty() { return N == 0; }
};

template <class T> struct uniform {
    T value;

    uniform() = default;
    MG_FUNC constexpr uniform(const T& v) : value(v) {}
    MG_FUNC constexpr operator T() const { return value; }
};
template <class T> MG_FUNC constexpr uniform<T> make_uniform(const T& v) { return uniform<T>(v); }

}  // namespace metal
