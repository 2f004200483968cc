/*
 * STM32F405/F407 (netduinoplus2 under QEMU): USART1 at 0x40011000 on PA9 (TX)
 * and PA10 (RX), alternate function 7.  The core runs from the 16 MHz HSI
 * reset clock.
 *
 * QEMU 7.2 models RCC and GPIO of this SoC as unimplemented devices (writes
 * ignored, reads zero), so this code never polls a ready flag.
 */
#include <stdint.h>

#include "board.h"

#define REG(addr) (*(volatile uint32_t *)(addr))

#define RCC_AHB1ENR REG(0x40023830UL)
#define RCC_APB2ENR REG(0x40023844UL)
#define GPIOA_MODER REG(0x40020000UL)
#define GPIOA_AFRH REG(0x40020024UL)

#define USART1_SR REG(0x40011000UL)
#define USART1_DR REG(0x40011004UL)
#define USART1_BRR REG(0x40011008UL)
#define USART1_CR1 REG(0x4001100CUL)

#define USART_SR_RXNE (1UL << 5)
#define USART_SR_TXE (1UL << 7)
#define USART_CR1_RE (1UL << 2)
#define USART_CR1_TE (1UL << 3)
#define USART_CR1_RXNEIE (1UL << 5)
#define USART_CR1_UE (1UL << 13)

/* USART1 global interrupt: IRQ 37, bit 5 of NVIC_ISER1 / NVIC_ICER1. */
#define NVIC_ISER1 REG(0xE000E104UL)
#define NVIC_ICER1 REG(0xE000E184UL)
#define USART1_IRQ_BIT (37 - 32)

void board_init(void)
{
    RCC_AHB1ENR |= 1UL << 0; /* GPIOA */
    RCC_APB2ENR |= 1UL << 4; /* USART1 */
    (void)RCC_APB2ENR;       /* read back: the clock is on before the first access */

    /* PA9, PA10: alternate function 7 */
    GPIOA_MODER = (GPIOA_MODER & ~(0xFUL << 18)) | (0xAUL << 18);
    GPIOA_AFRH = (GPIOA_AFRH & ~(0xFFUL << 4)) | (0x77UL << 4);

    /* Oversampling by 16: BRR = f_PCLK2 / baud, rounded. */
    USART1_BRR = (BOARD_CLOCK_HZ + BOARD_UART_BAUD / 2) / BOARD_UART_BAUD;
    USART1_CR1 = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE | USART_CR1_RXNEIE;
}

void board_irq_handler(void)
{
    /* Only wakes the core from board_uart_wait(); the byte stays in DR.
     * The interrupt line stays high until DR is read, so the handler masks
     * the interrupt in the NVIC instead of returning into it again. */
    NVIC_ICER1 = 1UL << USART1_IRQ_BIT;
}

void board_uart_wait(void)
{
    /* With interrupts masked, a byte arriving between the check and WFI
     * still wakes WFI, and the handler runs after cpsie. */
    __asm volatile("cpsid i" ::: "memory");
    if (!(USART1_SR & USART_SR_RXNE)) {
        NVIC_ISER1 = 1UL << USART1_IRQ_BIT;
        __asm volatile("dsb\n\twfi" ::: "memory");
    }
    __asm volatile("cpsie i" ::: "memory");
}

void board_uart_write(const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        while (!(USART1_SR & USART_SR_TXE)) {
        }
        USART1_DR = data[i];
    }
}

int board_uart_read_byte(void)
{
    /* Reading SR then DR also clears an overrun. */
    if (!(USART1_SR & USART_SR_RXNE)) {
        return -1;
    }
    return (int)(USART1_DR & 0xFFU);
}
