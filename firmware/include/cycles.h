/*
 * Latency counter.
 *
 * Real boards: DWT CYCCNT, core clock cycles (32 bits, extended to 64 bits
 * by cycles_now() when read at least once per wrap, 26 s at 168 MHz).
 *
 * Emulated boards (HARNESS_EMULATED=1): QEMU has no DWT, so SysTick runs
 * from the core clock with a wrap interrupt that extends it to 64 bits.
 * Under `-icount shift=0` one instruction advances virtual time by 1 ns, so
 * one SysTick tick is 1e9 / clock_hz instructions: the count is an
 * instruction count, not a time.
 */
#ifndef HARNESS_CYCLES_H
#define HARNESS_CYCLES_H

#include <stdint.h>

/* What cycles_now() counts, sent in the identify reply. */
enum cycles_source {
    CYCLES_SOURCE_SYSTICK_ICOUNT = 0, /* SysTick ticks under QEMU icount */
    CYCLES_SOURCE_DWT_CYCCNT = 1,     /* DWT core clock cycles */
};

void cycles_init(void);
uint64_t cycles_now(void);
enum cycles_source cycles_source(void);

/* Run `iterations` iterations of a two-instruction loop (subs; bne). */
void cycles_spin(uint32_t iterations);

#endif
