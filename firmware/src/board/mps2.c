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
#define UART_BAUDDIV (*(volatile uint32_t *)(UART0_BASE + 0x10))

#define UART_STATE_TX_FULL (1UL << 0)
#define UART_STATE_RX_FULL (1UL << 1)
#define UART_CTRL_TX_EN (1UL << 0)
#define UART_CTRL_RX_EN (1UL << 1)

void board_init(void)
{
    UART_BAUDDIV = BOARD_CLOCK_HZ / BOARD_UART_BAUD;
    UART_CTRL = UART_CTRL_TX_EN | UART_CTRL_RX_EN;
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
