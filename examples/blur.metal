#include <metal_stdlib>
using namespace metal;

// A Gaussian blur is separable: blurring the rows, then the columns of the result, equals the 2-D blur, at
// 2 (2r + 1) reads a pixel instead of (2r + 1)^2. Reads past the image's edge take the edge pixel.

// First pass: each pixel becomes the weighted sum of its row's neighbours, kept in float.
kernel void blur_rows(device const uchar4* image [[buffer(0)]],
                      device float4* rows [[buffer(1)]],
                      constant float* weights [[buffer(2)]],
                      constant int& radius [[buffer(3)]],
                      uint2 p [[thread_position_in_grid]],
                      uint2 size [[threads_per_grid]])
{
    float4 total = 0.0f;
    for (int d = -radius; d <= radius; ++d) {
        uint x = uint(clamp(int(p.x) + d, 0, int(size.x) - 1));
        total += weights[d + radius] * float4(image[p.y * size.x + x]);
    }
    rows[p.y * size.x + p.x] = total;
}

// Second pass: the same along the columns, rounded back to 8-bit channels.
kernel void blur_columns(device const float4* rows [[buffer(0)]],
                         device uchar4* blurred [[buffer(1)]],
                         constant float* weights [[buffer(2)]],
                         constant int& radius [[buffer(3)]],
                         uint2 p [[thread_position_in_grid]],
                         uint2 size [[threads_per_grid]])
{
    float4 total = 0.0f;
    for (int d = -radius; d <= radius; ++d) {
        uint y = uint(clamp(int(p.y) + d, 0, int(size.y) - 1));
        total += weights[d + radius] * rows[y * size.x + p.x];
    }
    blurred[p.y * size.x + p.x] = uchar4(round(clamp(total, 0.0f, 255.0f)));
}
