/* test_portable.c - the C tests of test_ban.c again, with ban.h built as on a machine
   without its x86 kernels or its threads (BAN_NO_SIMD, BAN_NO_THREADS): the plain C
   kernel and CBLAS alone must reproduce the reference as well. */
#define BAN_NO_SIMD
#define BAN_NO_THREADS
#include "test_ban.c"
