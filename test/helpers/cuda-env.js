// jest.cuda.config.js: the suites it runs load the library with the CUDA backend on a real GPU.
// Runs in each test file's worker before the file is loaded.
process.env.COMPRESSED_GEMM_BACKEND = 'cuda';
