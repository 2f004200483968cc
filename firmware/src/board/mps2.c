/*
 * ARM MPS2 FPGA images AN386 (Cortex-M4) and AN500 (Cortex-M7), as emulated
 * by QEMU's mps2-an386 and mps2-an500 machines.  UART0 is a CMSDK APB UART
 * at 0x40004000; the core clock is 25 MHz.
 */
#include <stdint.h>

#include "board.h"

#define UART0_BASE 0x40004000UL
#define UART_DATA (*(volatile uint32_t *)(UART0_BASE + 0x00))
#define UART_STATE (*(volatile uint32_t *)(UART0_BASE + 0x04))
#define UART_CTRL (*(volatile uint32_t *)(UART0_BASE + 0x08))
#define UART_INTSTATUS (*(volatile uint32_t *)(UART0_BASE + 0x0C))
#define UART_BAUDDIV (*(volatile uint32_t *)(UART0_BASE + 0x10))

#define UART_STATE_TX_FULL (1UL << 0)
#define UART_STATE_RX_FULL (1UL << 1)
#define UART_CTRL_TX_EN (1UL << 0)
#define UART_CTRL_RX_EN (1UL << 1)
#define UART_CTRL_RX_INT_EN (1UL << 3)
#define UART_INT_RX (1UL << 1)

/* UART0 RX is external interrupt 0 on QEMU's MPS2 machines. */
#define UART0_RX_IRQ 0
#define NVIC_ISER0 (*(volatile uint32_t *)0xE000E100UL)

void board_init(void)
{
    UART_BAUDDIV = BOARD_CLOCK_HZ / BOARD_UART_BAUD;
    UART_CTRL = UART_CTRL_TX_EN | UART_CTRL_RX_EN;
    NVIC_ISER0 = 1UL << UART0_RX_IRQ;
}

void board_irq_handler(void)
{
    /* Only wakes the core from board_uart_wait(); the byte stays in DATA. */
    UART_CTRL &= ~UART_CTRL_RX_INT_EN;
    UART_INTSTATUS = UART_INT_RX;
}

void board_uart_wait(void)
{
    /* With interrupts masked, a byte arriving between the check and WFI
     * still wakes WFI, and the handler runs after cpsie. */
    __asm volatile("cpsid i" ::: "memory");
    if (!(UART_STATE & UART_STATE_RX_FULL)) {
        UART_CTRL |= UART_CTRL_RX_INT_EN;
        __asm volatile("dsb\n\twfi" ::: "memory");
    }
    __asm volatile("cpsie i" ::: "memory");
}

void board_uart_write(const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        while (UART_STATE & UART_STATE_TX_FULL) {
        }
        UART_DATA = data[i];
    }
}

int board_uart_read_byte(void)
{
    if (!(UART_STATE & UART_STATE_RX_FULL)) {
        return -1;
    }
    return (int)(UART_DATA & 0xFFU);
}
