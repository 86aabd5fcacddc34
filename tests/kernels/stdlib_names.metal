// The names of Metal's standard library that production kernels reach for: traits, constant-expression limits and
// bit counts, metal::array, uniform, limit macros, fast:: and precise:: forms, and the library-internal names
// (__metal_* builtins, _disjunction, _numeric_limits_impl, __is_valid_simdgroup_type).
#include <metal_stdlib>
using namespace metal;

// ---- checked by the compiler --------------------------------------------------------------------------------
static_assert(is_convertible_v<int, float> && !is_convertible_v<float2, float> && is_convertible_v<half, float>,
              "is_convertible_v");
static_assert(is_same_v<remove_cv_t<const int>, int> && is_integral_v<ushort> && is_floating_point_v<bfloat> &&
              is_signed_v<char> && is_unsigned_v<uint> && is_arithmetic_v<half> && is_scalar_v<float> &&
              is_vector_v<int3> && !is_vector_v<int> && is_pointer_v<device int*> && is_void_v<void>,
              "the _v traits");
static_assert(_disjunction<is_same<int, float>, is_same<int, int>>::value &&
              !_conjunction<is_same<int, float>, is_same<int, int>>::value, "_disjunction and _conjunction");
static_assert(vec_elements<float4>::value == 4 && vec_elements<packed_half3>::value == 3 &&
              vec_elements<float>::value == 0, "vec_elements");
static_assert(is_same_v<metal::remove_addrspace_t<device const float>, const float>, "remove_addrspace_t");
static_assert(_fp_encoding_traits<float>::sign_mask == 0x80000000u && _fp_encoding_traits<half>::inf_mask == 0x7c00u &&
              _fp_encoding_traits<bfloat>::mantissa_mask == 0x7fu, "_fp_encoding_traits");
static_assert(__is_valid_simdgroup_type<float4>::value && __is_valid_simdgroup_type<ushort>::value &&
              !__is_valid_simdgroup_type<bfloat>::value, "__is_valid_simdgroup_type");

// Metal's traits are specialised in namespace metal (MLX: is_integral of its own integral constants).
template <int N> struct constant_int { static constexpr int value = N; };
namespace metal {
template <int N> struct is_integral<constant_int<N>> : true_type {};
}  // namespace metal
static_assert(is_integral_v<constant_int<3>> && is_arithmetic_v<constant_int<3>> && !is_integral_v<float>,
              "a kernel's own specialisation of a Metal trait");

// Metal has no double: a function of an unsuffixed literal's double is a float.
static_assert(is_same_v<decltype(metal::exp(0.5)), float> && is_same_v<decltype(metal::max(0.5, 1.0f)), float> &&
              is_same_v<decltype(metal::fma(float2(1), 0.5, 1.0)), float2>, "no double results");

// Constant expressions: limits, bit counts.
constexpr constant float largest = numeric_limits<float>::max();
constexpr constant half largest_half = numeric_limits<half>::max();
constexpr constant bfloat lowest_bfloat = numeric_limits<bfloat>::lowest();
constexpr constant float tiny_step = numeric_limits<float>::epsilon();
constexpr constant float infinite = numeric_limits<float>::infinity();
static_assert(largest == MAXFLOAT && float(largest_half) == float(MAXHALF) && float(HALF_MAX) == 65504.0f &&
              infinite > largest && numeric_limits<int>::max() == INT_MAX, "limits are constant expressions");
// Every type has every member, as in C++: an integer's infinity() is 0 (PyTorch's scans ask each type for it).
template <typename T> constexpr T neutral_max() { return numeric_limits<T>::has_infinity ? -numeric_limits<T>::infinity()
                                                                                      : numeric_limits<T>::lowest(); }
static_assert(numeric_limits<long>::infinity() == 0 && numeric_limits<bool>::quiet_NaN() == false &&
              neutral_max<int>() == INT_MIN && neutral_max<float>() < -3e38f, "integer limits");
constexpr constant int log2_of_64 = __builtin_ctz(64u);
constexpr constant int leading_zeros = __builtin_clz(255u);
constexpr constant int set_bits = __builtin_popcountll(0xf0f0f0f0f0ull);
static_assert(as_type<uint>(1.0f) == 0x3f800000u && as_type<float>(0x40000000u) == 2.0f, "as_type in constant expressions");
static_assert(log2_of_64 == 6 && leading_zeros == 24 && set_bits == 20, "bit builtins in constant expressions");

template <typename T> constexpr uint granularity() { return vec_elements<T>::value == 0 ? 1 : vec_elements<T>::value; }

// A kernel's own type, with limits through _numeric_limits_impl, as candle's argmax does.
template <typename T> struct indexed {
    uint i;
    T val;
};
template <typename T> struct _numeric_limits_impl<indexed<T>> {
    static constexpr METAL_FUNC indexed<T> lowest() { return indexed<T>{0, numeric_limits<T>::lowest()}; }
    static constexpr METAL_FUNC indexed<T> max() { return indexed<T>{0, numeric_limits<T>::max()}; }
};

template <typename T> constexpr constant bool is_small_atomic = _disjunction<is_same<T, int>, is_same<T, uint>>::value;

metal::array<int, 2> divmod(int x, int y) { return {x / y, x % y}; }

// Row k of `out` for x[id]: values the kernel computes from the names above.
kernel void stdlib_names(device const float* x [[buffer(0)]], device float* out [[buffer(1)]],
                         uint id [[thread_position_in_grid]], uint n [[threads_per_grid]]) {
    const float v = x[id];
    int k = 0;
    out[k++ * n + id] = largest;
    out[k++ * n + id] = largest_half;
    out[k++ * n + id] = lowest_bfloat;
    out[k++ * n + id] = tiny_step;
    out[k++ * n + id] = numeric_limits<indexed<half>>::lowest().val;
    out[k++ * n + id] = float(log2_of_64 + leading_zeros + set_bits);
    out[k++ * n + id] = granularity<float3>() + granularity<float>() + (is_small_atomic<uint> ? 10 : 0);
    const metal::array<int, 2> qr = divmod(int(v * 10), 7);
    out[k++ * n + id] = qr[0] * 100 + qr[1] + int(qr.size());
    const uniform<int> a = make_uniform(int(v * 4)), b = make_uniform(3);
    const uniform<int> product = a * b;
    out[k++ * n + id] = product + 1;
    out[k++ * n + id] = fast::min(v, 0.5f) + precise::max(v, -0.5f);
    out[k++ * n + id] = __metal_fabs(v, __METAL_FAST_MATH__) + __metal_fmax(v, 1.0f, __METAL_MAYBE_FAST_MATH__);
    out[k++ * n + id] = __metal_fma(v, 2.0f, 1.0f) + __metal_floor(v, __METAL_PRECISE_MATH__);
    out[k++ * n + id] = __metal_fmin3(v, 0.25f, 2.0f, __METAL_PRECISE_MATH__);
    out[k++ * n + id] = HUGE_VALH == half(INFINITY) ? M_PI_F : 0.0f;
}

// SIMD-group builtins behind the functions, and the lane, for one SIMD-group of 32 threads.
kernel void stdlib_simd_builtins(device const float* x [[buffer(0)]], device float* out [[buffer(1)]],
                                 uint id [[thread_position_in_grid]]) {
    const float v = x[id];
    const ushort lane = __metal_get_thread_index_in_simdgroup(ushort());
    out[0 * 32 + id] = __metal_simd_sum(v);
    out[1 * 32 + id] = __metal_simd_shuffle(v, ushort(31 - lane));
    out[2 * 32 + id] = __metal_simd_shuffle_and_fill_down(v, -v, ushort(3), __metal_get_simdgroup_size(ushort()));
    out[3 * 32 + id] = __metal_simd_max(v) + simd_prefix_exclusive_sum(1.0f);
}

// The bitwise SIMD-group reductions of floats combine their bits (Metal's builtins take them: MLX's bfloat
// simd_xor passes a float).
kernel void stdlib_simd_float_bits(device const float* x [[buffer(0)]], device uint* out [[buffer(1)]],
                                   uint id [[thread_position_in_grid]]) {
    out[0 * 32 + id] = as_type<uint>(simd_xor(x[id]));
    out[1 * 32 + id] = as_type<uint>(__metal_simd_and(x[id]));
    out[2 * 32 + id] = as_type<ushort>(simd_or(half(x[id])));
    out[3 * 32 + id] = as_type<uint2>(simd_xor(float2(x[id], -x[id]))).y;
}

// A SIMD-group builtin called directly is a SIMD-group function too (the kernel cooperates on the CPU).
kernel void stdlib_simd_builtin_alone(device float* x [[buffer(0)]], uint id [[thread_position_in_grid]]) {
    x[id] = __metal_simd_sum(x[id]) + float(__metal_get_thread_index_in_simdgroup(ushort()));
}
