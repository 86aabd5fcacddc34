#include <metal_stdlib>
using namespace metal;

// Bodies are float4: position in xyz, mass in w. Units with G = 1.

// The acceleration of every body (xyz) and the gravitational potential at it (w), from all the bodies. Each
// threadgroup walks the bodies one tile at a time: its threads copy a tile into threadgroup memory together,
// wait, then each reads the whole tile from there, so every body is read from device memory once a threadgroup
// instead of once a thread. The grid and the threadgroups must hold whole tiles (the host checks): every thread
// loads one body of each tile.
kernel void accelerations(device const float4* bodies [[buffer(0)]],
                          device float4* accelerations [[buffer(1)]],
                          constant float& softening [[buffer(2)]],
                          threadgroup float4* tile [[threadgroup(0)]],
                          uint i [[thread_position_in_grid]],
                          uint count [[threads_per_grid]],
                          uint lane [[thread_position_in_threadgroup]],
                          uint tile_size [[threads_per_threadgroup]])
{
    float3 position = bodies[i].xyz;
    float eps2 = softening * softening;
    float3 acceleration = 0.0f;
    float potential = 0.0f;
    for (uint start = 0; start < count; start += tile_size) {
        tile[lane] = bodies[start + lane];
        threadgroup_barrier(mem_flags::mem_threadgroup);
        for (uint j = 0; j < tile_size; ++j) {
            float3 d = tile[j].xyz - position;
            float inverse_r = rsqrt(dot(d, d) + eps2);  // softened: two bodies never pull infinitely hard
            float m_over_r = tile[j].w * inverse_r;
            acceleration += d * (m_over_r * inverse_r * inverse_r);
            potential -= m_over_r;
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);  // everyone is done with the tile before it is replaced
    }
    // The loop counted the body itself (d = 0): no force, but a potential of -m / softening to take back.
    accelerations[i] = float4(acceleration, potential + bodies[i].w / softening);
}

// Leapfrog (kick-drift-kick), first half: velocity by half a step of the old acceleration, then position by a
// whole step of that velocity.
kernel void kick_drift(device float4* bodies [[buffer(0)]],
                       device float4* velocities [[buffer(1)]],
                       device const float4* accelerations [[buffer(2)]],
                       constant float& dt [[buffer(3)]],
                       uint i [[thread_position_in_grid]])
{
    float3 velocity = velocities[i].xyz + 0.5f * dt * accelerations[i].xyz;
    velocities[i] = float4(velocity, 0.0f);
    bodies[i] = float4(bodies[i].xyz + dt * velocity, bodies[i].w);
}

// Second half, after the accelerations at the new positions: velocity by the other half step.
kernel void kick(device float4* velocities [[buffer(0)]],
                 device const float4* accelerations [[buffer(1)]],
                 constant float& dt [[buffer(2)]],
                 uint i [[thread_position_in_grid]])
{
    velocities[i] = float4(velocities[i].xyz + 0.5f * dt * accelerations[i].xyz, 0.0f);
}
