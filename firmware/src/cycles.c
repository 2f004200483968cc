#include "cycles.h"

#include <stdint.h>

#define SYST_CSR (*(volatile uint32_t *)0xE000E010UL)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014UL)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018UL)
#define DEMCR (*(volatile uint32_t *)0xE000EDFCUL)
#define DWT_CTRL (*(volatile uint32_t *)0xE0001000UL)
#define DWT_CYCCNT (*(volatile uint32_t *)0xE0001004UL)
#define DWT_LAR (*(volatile uint32_t *)0xE0001FB0UL)

#define SYSTICK_RELOAD 0x00FFFFFFUL

#if HARNESS_EMULATED

static volatile uint32_t g_systick_wraps;

void SysTick_Handler(void) { g_systick_wraps++; }

void cycles_init(void)
{
    SYST_RVR = SYSTICK_RELOAD;
    SYST_CVR = 0;
    /* CLKSOURCE = core clock, TICKINT, ENABLE */
    SYST_CSR = 0x7U;
}

uint64_t cycles_now(void)
{
    /* Re-read when a wrap interrupt ran between the two reads. */
    uint32_t wraps, current;
    do {
        wraps = g_systick_wraps;
        current = SYST_CVR;
    } while (wraps != g_systick_wraps);
    return (uint64_t)wraps * (SYSTICK_RELOAD + 1U) + (SYSTICK_RELOAD - current);
}

enum cycles_source cycles_source(void) { return CYCLES_SOURCE_SYSTICK_ICOUNT; }

#else

static uint32_t g_last_cyccnt;
static uint64_t g_cyccnt_high;

void SysTick_Handler(void) {}

void cycles_init(void)
{
    DEMCR |= 1UL << 24; /* TRCENA */
    DWT_LAR = 0xC5ACCE55UL; /* unlock on Cortex-M7; ignored elsewhere */
    DWT_CYCCNT = 0;
    DWT_CTRL |= 1UL; /* CYCCNTENA */
}

uint64_t cycles_now(void)
{
    uint32_t now = DWT_CYCCNT;
    if (now < g_last_cyccnt) {
        g_cyccnt_high += 1ULL << 32;
    }
    g_last_cyccnt = now;
    return g_cyccnt_high | now;
}

enum cycles_source cycles_source(void) { return CYCLES_SOURCE_DWT_CYCCNT; }

#endif

void cycles_spin(uint32_t iterations)
{
    if (iterations == 0) {
        return;
    }
    __asm volatile("1: subs %0, %0, #1\n\t"
                   "bne 1b"
                   : "+r"(iterations)
                   :
                   : "cc");
}
