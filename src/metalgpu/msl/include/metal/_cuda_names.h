// metal/_cuda_names.h -- CUDA only: give the Metal vector names that CUDA already declares at global scope
// (float4, int2, ..., and half2 should cuda_fp16.h be included first) our own spelling. See the note at the top of _target.h.
#pragma once
#define char2 mg_char2
#define char3 mg_char3
#define char4 mg_char4
#define uchar2 mg_uchar2
#define uchar3 mg_uchar3
#define uchar4 mg_uchar4
#define short2 mg_short2
#define short3 mg_short3
#define short4 mg_short4
#define ushort2 mg_ushort2
#define ushort3 mg_ushort3
#define ushort4 mg_ushort4
#define int2 mg_int2
#define int3 mg_int3
#define int4 mg_int4
#define uint2 mg_uint2
#define uint3 mg_uint3
#define uint4 mg_uint4
#define long2 mg_long2
#define long3 mg_long3
#define long4 mg_long4
#define ulong2 mg_ulong2
#define ulong3 mg_ulong3
#define ulong4 mg_ulong4
#define float2 mg_float2
#define float3 mg_float3
#define float4 mg_float4
#define half2 mg_half2
#define half3 mg_half3
#define half4 mg_half4
