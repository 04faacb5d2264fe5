/* test_alloc.h - ban.h's allocations counted (BAN_MALLOC), so that a test can prove a forward
   pass makes none. Include before ban.h's implementation. */
#ifndef TEST_ALLOC_H
#define TEST_ALLOC_H
#include <stdlib.h>

static long g_allocs;
static void *counting_malloc(size_t n)
{
    __atomic_add_fetch(&g_allocs, 1, __ATOMIC_SEQ_CST);
    return malloc(n);
}
#define BAN_MALLOC(n) counting_malloc(n)
#define BAN_FREE(p) free(p)
#endif
