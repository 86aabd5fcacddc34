#include <metal_stdlib>
using namespace metal;

// The view: the complex plane's point at pixel (0, 0), the step between pixels, and the iteration limit.
struct View {
    float2 origin;
    float step;
    uint max_iterations;
};

// One thread per pixel: how many iterations of z = z * z + c leave |z| <= 2, or max_iterations for a point that
// never escapes (inside the set). Rows go downwards, so the imaginary part falls as y grows.
kernel void mandelbrot(constant View& view [[buffer(0)]],
                       device uint* iterations [[buffer(1)]],
                       uint2 pixel [[thread_position_in_grid]],
                       uint2 size [[threads_per_grid]])
{
    float2 c = float2(view.origin.x + pixel.x * view.step, view.origin.y - pixel.y * view.step);
    float2 z = 0.0f;
    uint n = 0;
    while (n < view.max_iterations && dot(z, z) <= 4.0f) {
        z = float2(z.x * z.x - z.y * z.y, 2.0f * z.x * z.y) + c;
        ++n;
    }
    iterations[pixel.y * size.x + pixel.x] = n;
}
