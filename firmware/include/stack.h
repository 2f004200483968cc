/* Stack painting for the high-water mark reported by the memory command. */
#ifndef HARNESS_STACK_H
#define HARNESS_STACK_H

#include <stdint.h>

#define STACK_PAINT_WORD 0xA5A5A5A5UL

/* Size of the stack region reserved by the linker script. */
uint32_t stack_size_bytes(void);

/* Deepest stack use since boot: bytes below __stack_top that are no longer painted. */
uint32_t stack_high_water_bytes(void);

#endif
