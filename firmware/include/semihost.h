/* ARM semihosting calls, used only on emulated builds. */
#ifndef HARNESS_SEMIHOST_H
#define HARNESS_SEMIHOST_H

#include <stdint.h>

/* End the emulator with exit status `code` (SYS_EXIT_EXTENDED); never returns. */
void semihost_exit(int code) __attribute__((noreturn));

/* Open the host file `path` (NUL-terminated) for binary reading; return its
 * handle, or -1 when the host cannot open it. */
int32_t semihost_open_read(const char *path, uint32_t path_len);

/* Length of the open file `handle` in bytes, or -1. */
int32_t semihost_file_length(int32_t handle);

/* Read `len` bytes at byte `offset` of `handle` into `buffer`; return 0
 * when all of them were read, otherwise -1. */
int32_t semihost_read_at(int32_t handle, uint32_t offset, uint8_t *buffer, uint32_t len);

/* Close `handle`. */
void semihost_close(int32_t handle);

#endif
