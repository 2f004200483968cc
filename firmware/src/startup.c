/*
 * Reset handler, vector table and fault handlers for every Cortex-M board.
 *
 * Reset_Handler paints the stack (for the high-water mark), copies .data
 * from flash, zeroes .bss, enables the FPU when the build uses hard-float,
 * then calls board_init() and main().
 */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "semihost.h"
#include "stack.h"

extern uint32_t __stack_top[], __stack_bottom[];
extern uint32_t __data_start[], __data_end[], __data_load[];
extern uint32_t __bss_start[], __bss_end[];

int main(void);
void Reset_Handler(void);
void SysTick_Handler(void);

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88UL)

static void fault_loop(void)
{
#if HARNESS_EMULATED
    /* Under QEMU a fault ends the run at once with a distinct status. */
    semihost_exit(3);
#else
    for (;;) {
    }
#endif
}

void Default_Handler(void) { fault_loop(); }
void NMI_Handler(void) __attribute__((weak, alias("Default_Handler")));
void HardFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void MemManage_Handler(void) __attribute__((weak, alias("Default_Handler")));
void BusFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void UsageFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SVC_Handler(void) __attribute__((weak, alias("Default_Handler")));
void PendSV_Handler(void) __attribute__((weak, alias("Default_Handler")));

/* Families without a UART wake-up interrupt keep these empty defaults. */
__attribute__((weak)) void board_irq_handler(void) {}
__attribute__((weak)) void board_uart_wait(void) {}

#define EXTERNAL_IRQS 64

/* Core exceptions, then every external interrupt to board_irq_handler(). */
__attribute__((section(".isr_vector"), used)) const void *const g_vectors[16 + EXTERNAL_IRQS] = {
    __stack_top,
    (const void *)Reset_Handler,
    (const void *)NMI_Handler,
    (const void *)HardFault_Handler,
    (const void *)MemManage_Handler,
    (const void *)BusFault_Handler,
    (const void *)UsageFault_Handler,
    0,
    0,
    0,
    0,
    (const void *)SVC_Handler,
    0,
    0,
    (const void *)PendSV_Handler,
    (const void *)SysTick_Handler,
    [16 ... 16 + EXTERNAL_IRQS - 1] = (const void *)board_irq_handler,
};

__attribute__((noinline)) static void paint_stack(void)
{
    uint32_t sp;
    __asm volatile("mov %0, sp" : "=r"(sp));
    /* Leave 64 bytes below the current frame unpainted as a margin. */
    volatile uint32_t *word = __stack_bottom;
    while ((uint32_t)word < sp - 64U) {
        *word++ = STACK_PAINT_WORD;
    }
}

uint32_t stack_size_bytes(void)
{
    return (uint32_t)((uintptr_t)__stack_top - (uintptr_t)__stack_bottom);
}

uint32_t stack_high_water_bytes(void)
{
    const uint32_t *word = __stack_bottom;
    while (word < __stack_top && *word == STACK_PAINT_WORD) {
        word++;
    }
    return (uint32_t)((uintptr_t)__stack_top - (uintptr_t)word);
}

void Reset_Handler(void)
{
    paint_stack();

    uint32_t *src = __data_load;
    for (uint32_t *dst = __data_start; dst < __data_end;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = __bss_start; dst < __bss_end;) {
        *dst++ = 0;
    }

#if defined(__ARM_FP)
    /* Full access to CP10 and CP11 before the first floating-point instruction. */
    SCB_CPACR |= 0xFUL << 20;
    __asm volatile("dsb\n\tisb" ::: "memory");
#endif

    board_init();
    main();
    fault_loop();
}
