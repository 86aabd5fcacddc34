// Conformance: as_type (bit reinterpretation between types of one size) and the pack/unpack functions.
#include <metal_stdlib>
using namespace metal;

kernel void as_type_ops(device const uint* x [[buffer(0)]], device uint* out [[buffer(1)]],
                        device float* fout [[buffer(2)]],
                        uint id [[thread_position_in_grid]], uint n [[threads_per_grid]]) {
    const uint u = x[id];
    const float f = as_type<float>(u);
    fout[id] = f;
    out[0 * n + id] = as_type<uint>(f);
    out[1 * n + id] = as_type<uint>(as_type<half2>(u));
    out[2 * n + id] = as_type<uint>(as_type<ushort2>(u).yx);
    out[3 * n + id] = uint(as_type<char4>(u).x + 128);
    out[4 * n + id] = as_type<uint>(as_type<int>(u) >> 4);
    out[5 * n + id] = uint(as_type<uint2>(as_type<float2>(uint2(u, ~u))).y);
    out[6 * n + id] = uint(as_type<ushort>(half(f)));
    out[7 * n + id] = uint(as_type<ushort>(bfloat(f)));
}

// pack: four floats in, one uint per function; unpack: one uint in, four floats per function.
kernel void pack_ops(device const float4* x [[buffer(0)]], device uint* out [[buffer(1)]],
                     uint id [[thread_position_in_grid]], uint n [[threads_per_grid]]) {
    const float4 v = x[id];
    out[0 * n + id] = pack_float_to_unorm4x8(v);
    out[1 * n + id] = pack_float_to_snorm4x8(v);
    out[2 * n + id] = pack_float_to_unorm2x16(v.xy);
    out[3 * n + id] = pack_float_to_snorm2x16(v.zw);
    out[4 * n + id] = pack_half_to_unorm4x8(half4(v));
    out[5 * n + id] = pack_half_to_snorm2x16(half2(v.xy));
}

kernel void unpack_ops(device const uint* x [[buffer(0)]], device float4* out [[buffer(1)]],
                       uint id [[thread_position_in_grid]], uint n [[threads_per_grid]]) {
    const uint u = x[id];
    out[0 * n + id] = unpack_unorm4x8_to_float(u);
    out[1 * n + id] = unpack_snorm4x8_to_float(u);
    out[2 * n + id] = float4(unpack_unorm2x16_to_float(u), unpack_snorm2x16_to_float(u));
    out[3 * n + id] = float4(unpack_unorm4x8_to_half(u));
    out[4 * n + id] = float4(float2(unpack_snorm2x16_to_half(u)), float2(unpack_unorm2x16_to_half(u)));
}

// sRGB: pack four floats (and the same as half) to one uint; unpack one uint to float4 and half4.
kernel void srgb_ops(device const float4* x [[buffer(0)]], device const uint* u [[buffer(1)]],
                     device uint* packed [[buffer(2)]], device float4* unpacked [[buffer(3)]],
                     device half4* unpacked_half [[buffer(4)]],
                     uint id [[thread_position_in_grid]], uint n [[threads_per_grid]]) {
    packed[0 * n + id] = pack_float_to_srgb_unorm4x8(x[id]);
    packed[1 * n + id] = pack_half_to_srgb_unorm4x8(half4(x[id]));
    unpacked[id] = unpack_unorm4x8_srgb_to_float(u[id]);
    unpacked_half[id] = unpack_unorm4x8_srgb_to_half(u[id]);
}

// Unequal fields: unorm10a2 in a uint and unorm565 in a ushort, from float and from half, and back.
kernel void field_pack_ops(device const float4* x [[buffer(0)]], device const uint* u [[buffer(1)]],
                           device uint* packed [[buffer(2)]], device float4* unpacked [[buffer(3)]],
                           uint id [[thread_position_in_grid]], uint n [[threads_per_grid]]) {
    const float4 v = x[id];
    packed[0 * n + id] = pack_float_to_unorm10a2(v);
    packed[1 * n + id] = pack_half_to_unorm10a2(half4(v));
    packed[2 * n + id] = pack_float_to_unorm565(v.xyz);
    packed[3 * n + id] = pack_half_to_unorm565(half3(v.xyz));
    unpacked[0 * n + id] = unpack_unorm10a2_to_float(u[id]);
    unpacked[1 * n + id] = float4(unpack_unorm10a2_to_half(u[id]));
    unpacked[2 * n + id] = float4(unpack_unorm565_to_float(ushort(u[id])), 0.0f);
    unpacked[3 * n + id] = float4(float3(unpack_unorm565_to_half(ushort(u[id]))), 0.0f);
}
