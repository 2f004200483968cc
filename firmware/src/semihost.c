#include "semihost.h"

#include <stdint.h>

#define SYS_OPEN 0x01
#define SYS_CLOSE 0x02
#define SYS_READ 0x06
#define SYS_SEEK 0x0A
#define SYS_FLEN 0x0C
#define SYS_EXIT_EXTENDED 0x20
#define ADP_STOPPED_APPLICATION_EXIT 0x20026
#define OPEN_MODE_READ_BINARY 1 /* "rb" in the semihosting mode table */

/* One semihosting call: operation in r0, pointer to its argument block in
 * r1, result in r0. */
static int32_t semihost_call(uint32_t operation, const void *arguments)
{
    register uint32_t r0 __asm("r0") = operation;
    register const void *r1 __asm("r1") = arguments;
    __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return (int32_t)r0;
}

int32_t semihost_open_read(const char *path, uint32_t path_len)
{
    uint32_t block[3] = {(uint32_t)path, OPEN_MODE_READ_BINARY, path_len};
    return semihost_call(SYS_OPEN, block);
}

int32_t semihost_file_length(int32_t handle)
{
    uint32_t block[1] = {(uint32_t)handle};
    return semihost_call(SYS_FLEN, block);
}

int32_t semihost_read_at(int32_t handle, uint32_t offset, uint8_t *buffer, uint32_t len)
{
    uint32_t seek[2] = {(uint32_t)handle, offset};
    if (semihost_call(SYS_SEEK, seek) != 0) {
        return -1;
    }
    /* SYS_READ returns the number of bytes it did not read. */
    uint32_t read[3] = {(uint32_t)handle, (uint32_t)buffer, len};
    return semihost_call(SYS_READ, read) == 0 ? 0 : -1;
}

void semihost_close(int32_t handle)
{
    uint32_t block[1] = {(uint32_t)handle};
    (void)semihost_call(SYS_CLOSE, block);
}

void semihost_exit(int code)
{
    /* SYS_EXIT_EXTENDED takes a pointer to {reason, status}. */
    uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
    register uint32_t r0 __asm("r0") = SYS_EXIT_EXTENDED;
    register uint32_t *r1 __asm("r1") = block;
    __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    for (;;) {
    }
}
