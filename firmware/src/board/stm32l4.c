/*
 * STM32L4R5 on the NUCLEO-L4R5ZI: LPUART1 on PG7 (TX) and PG8 (RX),
 * alternate function 8, wired to the ST-LINK virtual COM port.  Port G is
 * powered from VDDIO2, enabled through PWR_CR2.IOSV.  The system clock is
 * switched from the 4 MHz MSI reset clock to the 16 MHz HSI16, which also
 * clocks LPUART1.
 *
 * NOTE: written from the RM0432 register map and built here, but never run
 * on a board in this repository's tests.
 */
#include <stdint.h>

#include "board.h"

#define REG(addr) (*(volatile uint32_t *)(addr))

#define RCC_BASE 0x40021000UL
#define RCC_CR REG(RCC_BASE + 0x00)
#define RCC_CFGR REG(RCC_BASE + 0x08)
#define RCC_AHB2ENR REG(RCC_BASE + 0x4C)
#define RCC_APB1ENR1 REG(RCC_BASE + 0x58)
#define RCC_APB1ENR2 REG(RCC_BASE + 0x5C)
#define RCC_CCIPR REG(RCC_BASE + 0x88)
#define PWR_CR2 REG(0x40007004UL)

#define GPIOG_BASE 0x48001800UL
#define GPIOG_MODER REG(GPIOG_BASE + 0x00)
#define GPIOG_AFRL REG(GPIOG_BASE + 0x20)
#define GPIOG_AFRH REG(GPIOG_BASE + 0x24)

#define LPUART1_BASE 0x40008000UL
#define LPUART1_CR1 REG(LPUART1_BASE + 0x00)
#define LPUART1_BRR REG(LPUART1_BASE + 0x0C)
#define LPUART1_ISR REG(LPUART1_BASE + 0x1C)
#define LPUART1_ICR REG(LPUART1_BASE + 0x20)
#define LPUART1_RDR REG(LPUART1_BASE + 0x24)
#define LPUART1_TDR REG(LPUART1_BASE + 0x28)

#define USART_CR1_UE (1UL << 0)
#define USART_CR1_RE (1UL << 2)
#define USART_CR1_TE (1UL << 3)
#define USART_ISR_ORE (1UL << 3)
#define USART_ISR_RXNE (1UL << 5)
#define USART_ISR_TXE (1UL << 7)

void board_init(void)
{
    /* HSI16 on, then system clock from HSI16 (SW = 01). */
    RCC_CR |= 1UL << 8;
    while (!(RCC_CR & (1UL << 10))) {
    }
    RCC_CFGR = (RCC_CFGR & ~0x3UL) | 0x1UL;
    while (((RCC_CFGR >> 2) & 0x3UL) != 0x1UL) {
    }

    RCC_APB1ENR1 |= 1UL << 28; /* PWR */
    PWR_CR2 |= 1UL << 9;       /* IOSV: VDDIO2 valid, port G usable */
    RCC_AHB2ENR |= 1UL << 6;   /* GPIOG */
    RCC_APB1ENR2 |= 1UL << 0;  /* LPUART1 */
    RCC_CCIPR = (RCC_CCIPR & ~(0x3UL << 10)) | (0x2UL << 10); /* LPUART1 from HSI16 */
    (void)RCC_APB1ENR2;

    /* PG7, PG8: alternate function 8 */
    GPIOG_MODER = (GPIOG_MODER & ~(0xFUL << 14)) | (0xAUL << 14);
    GPIOG_AFRL = (GPIOG_AFRL & ~(0xFUL << 28)) | (0x8UL << 28);
    GPIOG_AFRH = (GPIOG_AFRH & ~0xFUL) | 0x8UL;

    /* LPUART: BRR = 256 * f_clk / baud. */
    LPUART1_BRR = (uint32_t)((256ULL * BOARD_CLOCK_HZ + BOARD_UART_BAUD / 2) / BOARD_UART_BAUD);
    LPUART1_CR1 = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE;
}

void board_uart_write(const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        while (!(LPUART1_ISR & USART_ISR_TXE)) {
        }
        LPUART1_TDR = data[i];
    }
}

int board_uart_read_byte(void)
{
    uint32_t isr = LPUART1_ISR;
    if (isr & USART_ISR_ORE) {
        LPUART1_ICR = USART_ISR_ORE;
    }
    if (!(isr & USART_ISR_RXNE)) {
        return -1;
    }
    return (int)(LPUART1_RDR & 0xFFU);
}
