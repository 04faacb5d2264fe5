/* file.h - how the examples' readers open the files they are given (questions.h, image.h,
   npz.h): regular files only. Opening a FIFO nobody writes to would wait forever, and a device
   such as /dev/zero never ends; both are refused before a byte is read. Static inline
   functions, so that each header may include this one on its own.

   file_open(path, &size, err, errlen)       the descriptor of a regular file (opened
                                             O_NONBLOCK, which a regular file ignores) and its
                                             size; -1 with "PATH: cannot open: ..." or "PATH: not
                                             a regular file"
   file_read(path, max, &n, err, errlen)     a regular file of at most max bytes, read whole
                                             into malloc'd memory (free()) with a NUL after it;
                                             NULL with the message (also "PATH: N bytes: more
                                             than MAX" and "PATH: cannot read: ...") */
#ifndef FILE_H_INCLUDED
#define FILE_H_INCLUDED
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static inline int file_open(const char *path, uint64_t *size, char *err, size_t errlen)
{
    const int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) return snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno)), -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 0) {
        close(fd);
        return snprintf(err, errlen, "%s: not a regular file", path), -1;
    }
    *size = (uint64_t)st.st_size;
    return fd;
}

static inline unsigned char *file_read(const char *path, uint64_t max, size_t *n, char *err, size_t errlen)
{
    uint64_t size;
    const int fd = file_open(path, &size, err, errlen);
    if (fd < 0) return NULL;
    if (size > max || size >= SIZE_MAX) {
        close(fd);
        return snprintf(err, errlen, "%s: %llu bytes: more than %llu", path, (unsigned long long)size,
                        (unsigned long long)max), NULL;
    }
    unsigned char *buf = (unsigned char *)malloc((size_t)size + 1);
    size_t got = 0;
    int e = 0;
    while (buf && got < size) {
        const ssize_t r = read(fd, buf + got, (size_t)size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            e = r < 0 ? errno : 0;
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    if (!buf || got != size) {
        free(buf);
        return snprintf(err, errlen, "%s: cannot read: %s", path, !buf ? "out of memory" : e ? strerror(e) :
                        "it is shorter than when it was opened"), NULL;
    }
    buf[size] = 0;
    *n = (size_t)size;
    return buf;
}

#endif /* FILE_H_INCLUDED */
