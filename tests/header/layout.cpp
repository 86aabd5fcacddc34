// Compile-time checks of every vector type's layout and of the traits (compiled, not run, by test_header.py).
#include <metal_stdlib>
using namespace metal;

#define CHECK_LAYOUT(T) static_assert(metal::metal_layout<T>(), #T " vectors: layout differs from Metal's");
CHECK_LAYOUT(bool) CHECK_LAYOUT(char) CHECK_LAYOUT(uchar) CHECK_LAYOUT(short) CHECK_LAYOUT(ushort)
CHECK_LAYOUT(int) CHECK_LAYOUT(uint) CHECK_LAYOUT(long) CHECK_LAYOUT(ulong) CHECK_LAYOUT(half)
CHECK_LAYOUT(bfloat) CHECK_LAYOUT(float)

static_assert(sizeof(float3) == 16 && alignof(float3) == 16, "float3");
static_assert(sizeof(packed_float3) == 12 && alignof(packed_float3) == 4, "packed_float3");
static_assert(sizeof(half3) == 8 && alignof(half3) == 8, "half3");
static_assert(sizeof(char3) == 4 && sizeof(bool3) == 4, "char3, bool3");
static_assert(sizeof(ulong4) == 32 && alignof(ulong4) == 32, "ulong4");
static_assert(sizeof(long) == 8 && sizeof(ulong) == 8 && sizeof(half) == 2 && sizeof(bfloat) == 2, "scalars");

static_assert(is_same_v<vec<float, 4>, float4> && is_same_v<vec<uchar, 2>, uchar2>, "vec<T, N> spelling");
static_assert(vec_traits<float3>::size == 3 && is_same_v<vec_traits<float3>::type, float>, "vec_traits");
static_assert(vec_traits<float>::size == 1 && is_same_v<vec_traits<float>::type, float>, "vec_traits scalar");
static_assert(vec_traits<packed_half4>::size == 4 && is_same_v<vec_traits<packed_half4>::type, half>, "packed");
static_assert(is_floating_point_v<half> && is_floating_point_v<bfloat> && is_floating_point_v<float>, "");
static_assert(!is_floating_point_v<int> && is_integral_v<ushort> && is_integral_v<bool>, "");
static_assert(is_signed_v<char> && is_signed_v<half> && !is_signed_v<uint>, "");
static_assert(is_scalar_v<half> && !is_scalar_v<float2> && is_vector_v<float2> && is_vector_v<packed_int3>, "");
static_assert(is_same_v<make_unsigned_t<int>, uint> && is_same_v<make_unsigned_t<char4>, uchar4>, "");
static_assert(is_same_v<conditional_t<true, int, float>, int> && is_same_v<remove_cv_t<const volatile int>, int>, "");
static_assert(is_same_v<enable_if_t<true, int>, int>, "");
static_assert(numeric_limits<int>::max() == 2147483647 && numeric_limits<uchar>::max() == 255, "");
static_assert(numeric_limits<long>::min() == -9223372036854775807L - 1, "");

// Result types follow Metal.
static_assert(is_same_v<decltype(char4() + char4()), char4>, "char4 + char4 is char4");
static_assert(is_same_v<decltype(half() * 2.0f), float>, "half * float is float");
static_assert(is_same_v<decltype(half() * half()), half>, "half * half is half");
static_assert(is_same_v<decltype(float4() < float4()), bool4>, "comparisons give bool vectors");
static_assert(is_same_v<decltype(float4().xy), float2> && is_same_v<decltype(half3().zyx), half3>, "read swizzles are values");
static_assert(is_same_v<decltype(float4() + float4().wzyx), float4>, "swizzles take part in arithmetic");
static_assert(is_same_v<decltype(metal::cos(half())), half> && is_same_v<decltype(metal::cos(float3())), float3>, "");
static_assert(is_same_v<decltype(dot(float4().xyz, float3())), float>, "");
static_assert(is_same_v<decltype(isnan(half2())), bool2>, "");

// Constant initialisation (program-scope `constant` data must be built at compile time on CUDA).
constexpr float4 kConstant(1.0f, 2.0f, 3.0f, 4.0f);
constexpr uint3 kBroadcast(7u);
static_assert(kConstant[3] == 4.0f && kBroadcast[2] == 7u, "constexpr vectors");
