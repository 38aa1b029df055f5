// A CUPTI activity tracer loaded into any CUDA process by the driver (CUDA_INJECTION64_PATH=.../libradlads_trace.so):
// records every kernel, memcpy and memset with its GPU start/end timestamps and writes them as CSV at exit to
// $RADLADS_TRACE_OUT (default radlads-trace.csv). For the GPU machine, which has ncu but not nsys: ncu serialises
// kernels and times each alone, so it cannot show the gaps between kernels or what PDL overlaps; this can.
// Build: ./build.sh (needs the CUDA toolkit's CUPTI headers and library). Summarise: python3 summarize.py FILE.
#include <cupti.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(call)                                                                          \
    do                                                                                       \
    {                                                                                        \
        CUptiResult r_ = (call);                                                             \
        if (r_ != CUPTI_SUCCESS)                                                             \
        {                                                                                    \
            const char* s_ = 0;                                                              \
            cuptiGetResultString(r_, &s_);                                                   \
            fprintf(stderr, "radlads-trace: %s failed: %s\n", #call, s_ ? s_ : "?");         \
            return 1;                                                                        \
        }                                                                                    \
    } while (0)

static FILE* out;

static void CUPTIAPI requested(uint8_t** buffer, size_t* size, size_t* maxRecords)
{
    *size = 8 << 20;
    *buffer = (uint8_t*)aligned_alloc(8, *size);
    *maxRecords = 0;
}

static void CUPTIAPI completed(CUcontext ctx, uint32_t stream, uint8_t* buffer, size_t size, size_t valid)
{
    CUpti_Activity* record = 0;
    (void)ctx;
    (void)stream;
    (void)size;
    while (cuptiActivityGetNextRecord(buffer, valid, &record) == CUPTI_SUCCESS)
    {
        if (record->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL || record->kind == CUPTI_ACTIVITY_KIND_KERNEL)
        {
            // Every kernel record version from 4 on starts with these fields.
            CUpti_ActivityKernel4* k = (CUpti_ActivityKernel4*)record;
            fprintf(out, "kernel,%llu,%llu,%u,%d,%d,%d,%d,\"%s\"\n", (unsigned long long)k->start, (unsigned long long)k->end,
                k->streamId, k->gridX, k->gridY, k->gridZ, k->blockX, k->name ? k->name : "?");
        }
        else if (record->kind == CUPTI_ACTIVITY_KIND_MEMCPY)
        {
            CUpti_ActivityMemcpy* m = (CUpti_ActivityMemcpy*)record;
            fprintf(out, "memcpy,%llu,%llu,%u,%llu,%d,0,0,\"copy kind %d\"\n", (unsigned long long)m->start,
                (unsigned long long)m->end, m->streamId, (unsigned long long)m->bytes, 0, m->copyKind);
        }
        else if (record->kind == CUPTI_ACTIVITY_KIND_MEMSET)
        {
            CUpti_ActivityMemset* m = (CUpti_ActivityMemset*)record;
            fprintf(out, "memset,%llu,%llu,%u,%llu,0,0,0,\"memset\"\n", (unsigned long long)m->start, (unsigned long long)m->end,
                m->streamId, (unsigned long long)m->bytes);
        }
    }

    free(buffer);
}

static void finish(void)
{
    cuptiActivityFlushAll(1);
    if (out)
    {
        fclose(out);
        out = 0;
    }
}

int InitializeInjection(void)
{
    const char* path = getenv("RADLADS_TRACE_OUT");
    out = fopen(path && *path ? path : "radlads-trace.csv", "w");
    if (!out)
    {
        fprintf(stderr, "radlads-trace: cannot open the output file\n");
        return 1;
    }

    fprintf(out, "kind,start_ns,end_ns,stream,grid_x_or_bytes,grid_y,grid_z,block_x,name\n");
    CHECK(cuptiActivityRegisterCallbacks(requested, completed));
    CHECK(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL));
    CHECK(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMCPY));
    CHECK(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMSET));
    atexit(finish);
    return 1;
}
