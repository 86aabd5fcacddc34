// Metal runs the lanes of a SIMD-group together: a SIMD-group matrix load or store is done for every lane before
// any lane goes on, and kernels read what other lanes stored (or overwrite what they loaded) with no barrier.
#include <metal_stdlib>
using namespace metal;

// Each lane reads, right after the store, an element another lane stored: lane L reads element 63 - L.
kernel void store_then_read_other_lanes(device float* out [[buffer(0)]], ushort lane [[thread_index_in_simdgroup]],
                                        ushort sg [[simdgroup_index_in_threadgroup]]) {
    threadgroup float tiles[2][64];
    threadgroup float* tile = tiles[sg];
    simdgroup_float8x8 ones = make_filled_simdgroup_matrix<float, 8>(1.0f + sg);
    simdgroup_store(ones, tile, 8);
    out[sg * 32 + lane] = tile[63 - lane];
}

// Each lane writes its own element of the tile, then the SIMD-group loads the tile as a matrix, then every lane
// overwrites its element: the load sees all the first writes and none of the second.
kernel void write_load_overwrite(device float* out [[buffer(0)]], ushort lane [[thread_index_in_simdgroup]]) {
    threadgroup float tile[64];
    tile[lane] = float(lane);
    tile[lane + 32] = float(lane + 32);
    simdgroup_float8x8 m;
    simdgroup_load(m, tile, 8);
    tile[lane] = -1.0f;
    tile[lane + 32] = -1.0f;
    out[2 * lane] = m.thread_elements()[0];
    out[2 * lane + 1] = m.thread_elements()[1];
}
