// Metal's fixed-width integer names, in a struct and as buffer element types (NVRTC has no <cstdint>).
#include <metal_stdlib>
using namespace metal;

#define table_index_t uint16_t

struct Run {
    int32_t tail;
    uint8_t from;
    int8_t to;
    int16_t delta;
};

static uint32_t rounded_up(uint32_t number, uint32_t step) { return ((number - 1) / step) * step + step; }

kernel void fixed_width(device Run* runs [[buffer(0)]], device const table_index_t* index [[buffer(1)]],
                        device uint64_t* wide [[buffer(2)]], device int64_t* signed_wide [[buffer(3)]],
                        uint id [[thread_position_in_grid]]) {
    runs[id].tail = -int32_t(index[id]);
    runs[id].from = uint8_t(rounded_up(id + 1, 4));
    runs[id].to = int8_t(-int32_t(id % 100));
    runs[id].delta = int16_t(int32_t(index[id]) - 30000);
    wide[id] = (uint64_t(id) << 40) | index[id];
    signed_wide[id] = -(int64_t(id) << 33);
}
