// Kernels whose parameters' element types the binding checks compare buffers against (tests/test_type_checks.py).
#include <metal_stdlib>
using namespace metal;

kernel void plus_one(device const float* in [[buffer(0)]], device float* out [[buffer(1)]],
                     uint i [[thread_position_in_grid]]) {
    out[i] = in[i] + 1.0f;
}

kernel void sum_lanes4(device const float4* in [[buffer(0)]], device float* out [[buffer(1)]],
                       uint i [[thread_position_in_grid]]) {
    out[i] = in[i].x + in[i].y + in[i].z + in[i].w;
}

kernel void sum_lanes3(device const float3* in [[buffer(0)]], device float* out [[buffer(1)]],
                       uint i [[thread_position_in_grid]]) {
    out[i] = in[i].x + in[i].y + in[i].z;
}

kernel void sum_packed3(device const packed_float3* in [[buffer(0)]], device float* out [[buffer(1)]],
                        uint i [[thread_position_in_grid]]) {
    out[i] = in[i].x + in[i].y + in[i].z;
}

kernel void negate_int(device int* values [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    values[i] = -values[i];
}

kernel void half_to_float(device const half* in [[buffer(0)]], device float* out [[buffer(1)]],
                          uint i [[thread_position_in_grid]]) {
    out[i] = float(in[i]);
}

kernel void bfloat_to_float(device const bfloat* in [[buffer(0)]], device float* out [[buffer(1)]],
                            uint i [[thread_position_in_grid]]) {
    out[i] = float(in[i]);
}

// One byte buffer seen through two slots of different types, as ggml binds its tensors.
kernel void bytes_to_words(device const char* src [[buffer(0)]], device uint* bits [[buffer(1)]],
                           device float* values [[buffer(2)]], uint i [[thread_position_in_grid]]) {
    float v = *((device const float*)(src + 4 * i));
    values[i] = v * 2.0f;
    bits[i + 4] = as_type<uint>(v);
}

struct Record {
    float weight;
    int count;
    float2 offset;
};

kernel void weigh(constant Record* records [[buffer(0)]], device float* out [[buffer(1)]],
                  uint i [[thread_position_in_grid]]) {
    out[i] = records[i].weight * float(records[i].count) + records[i].offset.x + records[i].offset.y;
}

kernel void weigh_one(constant Record* record [[buffer(0)]], device float* out [[buffer(1)]],
                      uint i [[thread_position_in_grid]]) {
    out[i] = record->weight * float(record->count) + record->offset.y * float(i);
}
