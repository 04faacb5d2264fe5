/* test_quant_portable.c - the tests of test_quant.c with ban.h built as on a machine without
   its x86 kernels or its threads (BAN_NO_SIMD, BAN_NO_THREADS): the plain C bf16 and int8
   kernels alone must keep the golden fixtures within the same bounds. */
#define BAN_NO_SIMD
#define BAN_NO_THREADS
#include "test_quant.c"
