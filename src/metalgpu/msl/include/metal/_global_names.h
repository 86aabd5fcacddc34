// metal/_global_names.h -- Metal's scalar and vector type names at global scope as well.
//
// Metal makes `uint`, `half`, `float4`, `packed_float3` ... available to every shader, with no include and no
// `using namespace metal;` (only functions and matrices need those), so a kernel may be written with neither.
// These typedefs name the very types of namespace metal: with the using-directive as well, a name found in both
// places is one type, not an ambiguity; and a shader that typedefs `uint` itself the same way still compiles.
// On CUDA the vector names reach here already respelled by _cuda_names.h (float4 -> mg_float4).
#pragma once

typedef metal::uchar uchar;
typedef metal::ushort ushort;
typedef metal::uint uint;
typedef metal::ulong ulong;
typedef metal::half half;
typedef metal::bfloat bfloat;

#define MG_GLOBAL_VECTOR_NAMES(T)                                                             \
    typedef metal::T##2 T##2;                                                                 \
    typedef metal::T##3 T##3;                                                                 \
    typedef metal::T##4 T##4;                                                                 \
    typedef metal::packed_##T##2 packed_##T##2;                                               \
    typedef metal::packed_##T##3 packed_##T##3;                                               \
    typedef metal::packed_##T##4 packed_##T##4;
MG_VECTOR_ELEMENTS(MG_GLOBAL_VECTOR_NAMES)
#undef MG_GLOBAL_VECTOR_NAMES
#undef MG_VECTOR_ELEMENTS

// as_type<T>(x) is available to every shader, as a Metal builtin is.
using metal::as_type;
