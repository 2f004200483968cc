/*
 * Board support interface: one implementation per family in src/board/,
 * chosen by the board profile's `family` at build time.
 *
 * Data moves by polling.  Interrupts only wake the core from WFI and count
 * SysTick wraps, so the firmware has no concurrency.  The host sends one
 * request and waits for its reply.
 */
#ifndef HARNESS_BOARD_H
#define HARNESS_BOARD_H

#include <stddef.h>
#include <stdint.h>

/* Set up clocks, pins and the UART at 115200 baud 8N1; called once before main. */
void board_init(void);

/* Send `len` bytes, blocking until the UART has accepted all of them. */
void board_uart_write(const uint8_t *data, size_t len);

/* Return the next received byte (0..255), or -1 when none is waiting. */
int board_uart_read_byte(void);

/*
 * Sleep (WFI) until the UART may have received a byte.  Under QEMU this
 * stops the emulator from spinning on the status register, which both frees
 * the host CPU and lets QEMU deliver serial input sooner.  The default is an
 * empty function (plain polling); a family overrides it together with
 * board_irq_handler(), which serves every external interrupt.
 */
void board_uart_wait(void);
void board_irq_handler(void);

#define BOARD_UART_BAUD 115200UL

#endif
