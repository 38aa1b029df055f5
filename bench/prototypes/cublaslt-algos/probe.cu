// Which cuBLASLt algorithm is fastest for the 7B prefill GEMMs (T = 2048), against the heuristic's first choice (what
// CudaGemm takes)? A measurement, not product code: for each shape, up to 16 heuristic results, each timed (median of
// 9 runs after 3 warm-ups) in the layout CudaGemm uses (W [M, K] row-major used transposed, x [T, K] bf16, y [T, M]
// fp32 or bf16, fp32 compute). Build and run: ./run.sh (nvcc, links cublasLt).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#define CHECK(x) do { auto e_ = (x); if ((int)e_ != 0) { printf("%s failed: %d (line %d)\n", #x, (int)e_, __LINE__); exit(1); } } while (0)

struct Shape { const char* name; int t, k, m; bool bias, bf16; };

int main()
{
    Shape shapes[] = {
        {"7b gate|up (bf16 out)", 2048, 3584, 18944, false, true},
        {"7b down", 2048, 18944, 3584, false, false},
        {"7b o / CxC", 2048, 3584, 3584, false, false},
        {"7b r (bias)", 2048, 3584, 3584, true, false},
        {"7b k|v (bias)", 2048, 3584, 512, true, false},
        {"1.5b gate|up (bf16 out)", 2048, 1536, 8960, false, true},
        {"1.5b down", 2048, 8960, 1536, false, false},
        {"0.5b gate|up (bf16 out)", 2048, 896, 4864, false, true},
        {"0.5b down", 2048, 4864, 896, false, false},
    };
    cublasLtHandle_t lt;
    CHECK(cublasLtCreate(&lt));
    size_t wsBytes = 32u << 20;
    void* ws;
    CHECK(cudaMalloc(&ws, wsBytes));
    cudaStream_t stream;
    CHECK(cudaStreamCreate(&stream));
    cudaEvent_t e0, e1;
    CHECK(cudaEventCreate(&e0));
    CHECK(cudaEventCreate(&e1));
    size_t maxX = 0, maxW = 0, maxY = 0;
    for (auto& s : shapes) { maxX = std::max(maxX, (size_t)s.t * s.k); maxW = std::max(maxW, (size_t)s.k * s.m); maxY = std::max(maxY, (size_t)s.t * s.m); }
    __nv_bfloat16 *x, *w;
    float *y, *bias;
    CHECK(cudaMalloc(&x, maxX * 2));
    CHECK(cudaMalloc(&w, maxW * 2));
    CHECK(cudaMalloc(&y, maxY * 4));
    CHECK(cudaMalloc(&bias, 20000 * 4));
    CHECK(cudaMemset(x, 0x3c, maxX * 2)); // small finite bf16 values
    CHECK(cudaMemset(w, 0x3c, maxW * 2));
    CHECK(cudaMemset(bias, 0, 20000 * 4));
    for (auto& s : shapes)
    {
        cublasLtMatmulDesc_t desc;
        CHECK(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
        cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
        CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
        CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
        if (s.bias)
        {
            cublasLtEpilogue_t ep = CUBLASLT_EPILOGUE_BIAS;
            CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof ep));
            CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
        }
        cublasLtMatrixLayout_t A, B, D;
        CHECK(cublasLtMatrixLayoutCreate(&A, CUDA_R_16BF, s.k, s.m, s.k));
        CHECK(cublasLtMatrixLayoutCreate(&B, CUDA_R_16BF, s.k, s.t, s.k));
        CHECK(cublasLtMatrixLayoutCreate(&D, s.bf16 ? CUDA_R_16BF : CUDA_R_32F, s.m, s.t, s.m));
        cublasLtMatmulPreference_t pref;
        CHECK(cublasLtMatmulPreferenceCreate(&pref));
        CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsBytes, sizeof wsBytes));
        cublasLtMatmulHeuristicResult_t res[16];
        int n = 0;
        CHECK(cublasLtMatmulAlgoGetHeuristic(lt, desc, A, B, D, D, pref, 16, res, &n));
        double flop = 2.0 * s.t * s.k * s.m;
        printf("%s: T %d K %d M %d, %d algorithms\n", s.name, s.t, s.k, s.m, n);
        double first = 0, best = 1e30;
        int bestAt = -1;
        for (int i = 0; i < n; i++)
        {
            float alpha = 1, beta = 0;
            auto run = [&]() { return cublasLtMatmul(lt, desc, &alpha, w, A, x, B, &beta, y, D, y, D, &res[i].algo, ws, res[i].workspaceSize, stream); };
            bool ok = true;
            for (int r = 0; r < 3 && ok; r++) ok = run() == CUBLAS_STATUS_SUCCESS;
            if (!ok) { printf("  #%2d refused\n", i); continue; }
            std::vector<float> ms(9);
            for (auto& v : ms)
            {
                CHECK(cudaEventRecord(e0, stream));
                CHECK(run());
                CHECK(cudaEventRecord(e1, stream));
                CHECK(cudaEventSynchronize(e1));
                CHECK(cudaEventElapsedTime(&v, e0, e1));
            }
            std::sort(ms.begin(), ms.end());
            double us = ms[4] * 1000;
            if (i == 0) first = us;
            if (us < best) { best = us; bestAt = i; }
            int tile = 0, splitk = 0, swizzle = 0, stages = 0;
            size_t got;
            cublasLtMatmulAlgoConfigGetAttribute(&res[i].algo, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile, sizeof tile, &got);
            cublasLtMatmulAlgoConfigGetAttribute(&res[i].algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splitk, sizeof splitk, &got);
            cublasLtMatmulAlgoConfigGetAttribute(&res[i].algo, CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING, &swizzle, sizeof swizzle, &got);
            cublasLtMatmulAlgoConfigGetAttribute(&res[i].algo, CUBLASLT_ALGO_CONFIG_STAGES_ID, &stages, sizeof stages, &got);
            printf("  #%2d %8.1f us  %6.1f TFLOP/s  tile %d splitK %d swizzle %d stages %d  workspace %zu  waves %.2f\n", i, us,
                flop / us / 1e6, tile, splitk, swizzle, stages, res[i].workspaceSize, res[i].wavesCount);
        }
        if (bestAt >= 0) printf("  => heuristic's first %.1f us, best #%d %.1f us (%.1f %% faster)\n", first, bestAt, best, 100.0 * (first - best) / first);
        cublasLtMatmulPreferenceDestroy(pref);
        cublasLtMatrixLayoutDestroy(A);
        cublasLtMatrixLayoutDestroy(B);
        cublasLtMatrixLayoutDestroy(D);
        cublasLtMatmulDescDestroy(desc);
    }
    return 0;
}
