/*
 * STM32F746 on the NUCLEO-F746ZG: USART3 on PD8 (TX) and PD9 (RX),
 * alternate function 7, wired to the ST-LINK virtual COM port.  The core
 * runs from the 16 MHz HSI reset clock.
 *
 * NOTE: written from the RM0385 register map and built here, but never run
 * on a board in this repository's tests.
 */
#include <stdint.h>

#include "board.h"

#define REG(addr) (*(volatile uint32_t *)(addr))

#define RCC_AHB1ENR REG(0x40023830UL)
#define RCC_APB1ENR REG(0x40023840UL)
#define GPIOD_MODER REG(0x40020C00UL)
#define GPIOD_AFRH REG(0x40020C24UL)

#define USART3_BASE 0x40004800UL
#define USART3_CR1 REG(USART3_BASE + 0x00)
#define USART3_BRR REG(USART3_BASE + 0x0C)
#define USART3_ISR REG(USART3_BASE + 0x1C)
#define USART3_ICR REG(USART3_BASE + 0x20)
#define USART3_RDR REG(USART3_BASE + 0x24)
#define USART3_TDR REG(USART3_BASE + 0x28)

#define USART_CR1_UE (1UL << 0)
#define USART_CR1_RE (1UL << 2)
#define USART_CR1_TE (1UL << 3)
#define USART_ISR_ORE (1UL << 3)
#define USART_ISR_RXNE (1UL << 5)
#define USART_ISR_TXE (1UL << 7)

void board_init(void)
{
    RCC_AHB1ENR |= 1UL << 3;  /* GPIOD */
    RCC_APB1ENR |= 1UL << 18; /* USART3 */
    (void)RCC_APB1ENR;

    /* PD8, PD9: alternate function 7 */
    GPIOD_MODER = (GPIOD_MODER & ~(0xFUL << 16)) | (0xAUL << 16);
    GPIOD_AFRH = (GPIOD_AFRH & ~0xFFUL) | 0x77UL;

    USART3_BRR = (BOARD_CLOCK_HZ + BOARD_UART_BAUD / 2) / BOARD_UART_BAUD;
    USART3_CR1 = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE;
}

void board_uart_write(const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        while (!(USART3_ISR & USART_ISR_TXE)) {
        }
        USART3_TDR = data[i];
    }
}

int board_uart_read_byte(void)
{
    uint32_t isr = USART3_ISR;
    if (isr & USART_ISR_ORE) {
        USART3_ICR = USART_ISR_ORE; /* a lost byte shows up as a CRC error on the host */
    }
    if (!(isr & USART_ISR_RXNE)) {
        return -1;
    }
    return (int)(USART3_RDR & 0xFFU);
}
