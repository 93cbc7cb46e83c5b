#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <time.h>

// glibc declares strptime only under _GNU_SOURCE / _XOPEN_SOURCE, which Swift's Glibc module
// does not define; this wrapper makes it callable.
static inline char *sluice_strptime(const char *s, const char *format, struct tm *tm) {
    return strptime(s, format, tm);
}

#include <string.h>

// memrchr is a GNU extension, likewise hidden from Swift.
static inline void *sluice_memrchr(const void *s, int c, size_t n) {
    return memrchr(s, c, n);
}
