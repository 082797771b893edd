// The probe kernels (probe_kernels.cuh) compiled by nvcc into the CUDA addon, so that every PTX
// wrapper's inline asm is assembled by ptxas for each target architecture on every build (the
// simulated device never sees the asm strings). Not exported yet: a GPU run will bind the
// launchers to dump the registers the simulator's are compared with.
#include "cuda/probes/probe_kernels.cuh"
