#include <metal_stdlib>
using namespace metal;

// Each thread writes its own id into its own cell and counts its visits there:
// a thread that runs twice, or a thread outside the grid (which would alias a cell of the next row), shows up.
kernel void grid_ids(device uint* ids [[buffer(0)]],
                     device uint* hits [[buffer(1)]],
                     constant uint& width [[buffer(2)]],
                     constant uint& height [[buffer(3)]],
                     uint3 gid [[thread_position_in_grid]])
{
    uint i = (gid.z * height + gid.y) * width + gid.x;
    ids[i] = gid.x + 1000u * gid.y + 1000000u * gid.z;
    hits[i] += 1u;
}

// 16 values per thread: thread_position_in_threadgroup, threadgroup_position_in_grid,
// threads_per_threadgroup, threads_per_grid, threadgroups_per_grid (3 each), thread_index_in_threadgroup.
kernel void builtins_3d(device uint* out [[buffer(0)]],
                        uint3 gid [[thread_position_in_grid]],
                        uint3 tid [[thread_position_in_threadgroup]],
                        uint3 group [[threadgroup_position_in_grid]],
                        uint3 group_size [[threads_per_threadgroup]],
                        uint3 grid_size [[threads_per_grid]],
                        uint3 groups [[threadgroups_per_grid]],
                        uint index [[thread_index_in_threadgroup]])
{
    uint linear = (gid.z * grid_size.y + gid.y) * grid_size.x + gid.x;
    device uint* o = out + linear * 16u;
    o[0] = tid.x;        o[1] = tid.y;        o[2] = tid.z;
    o[3] = group.x;      o[4] = group.y;      o[5] = group.z;
    o[6] = group_size.x; o[7] = group_size.y; o[8] = group_size.z;
    o[9] = grid_size.x;  o[10] = grid_size.y; o[11] = grid_size.z;
    o[12] = groups.x;    o[13] = groups.y;    o[14] = groups.z;
    o[15] = index;
}

// The same builtins as scalars, for a 1-D dispatch.
kernel void builtins_1d(device uint* out [[buffer(0)]],
                        uint gid [[thread_position_in_grid]],
                        uint tid [[thread_position_in_threadgroup]],
                        uint group [[threadgroup_position_in_grid]],
                        uint group_size [[threads_per_threadgroup]],
                        uint grid_size [[threads_per_grid]])
{
    device uint* o = out + gid * 4u;
    o[0] = tid;
    o[1] = group;
    o[2] = group_size;
    o[3] = grid_size;
}

// Binds buffer(0) and buffer(2) only: run it with [a, None, c].
kernel void skip_slot(device const int* a [[buffer(0)]],
                      device int* c [[buffer(2)]],
                      uint id [[thread_position_in_grid]])
{
    c[id] = a[id] * 3;
}

// Echoes constant arguments so Python can check how each was converted.
kernel void echo_constants(device float* out [[buffer(0)]],
                           constant int& i [[buffer(1)]],
                           constant float& f [[buffer(2)]],
                           constant bool& b [[buffer(3)]],
                           constant float* coeffs [[buffer(4)]],
                           constant uint& n [[buffer(5)]],
                           constant long& big [[buffer(6)]],
                           device long* big_out [[buffer(7)]],
                           uint id [[thread_position_in_grid]])
{
    out[0] = float(i);
    out[1] = f;
    out[2] = b ? 1.0f : 0.0f;
    for (uint k = 0; k < n; ++k) {
        out[3 + k] = coeffs[k];
    }
    big_out[0] = big * 2;
}
