// metal/_cooperative_cpu.h -- threadgroups as cooperative fibers on the CPU, included at the end of _launch_cpu.h.
//
//   _fibers_cpu.h     the context switch, fiber stacks, the runner (mg::run_cooperative, its statuses) and
//                     threadgroup_barrier
//   _simdgroup_cpu.h  the SIMD-group and quad-group functions, a rendezvous of lanes at one call site
#pragma once
#include "_fibers_cpu.h"
#include "_simdgroup_cpu.h"
