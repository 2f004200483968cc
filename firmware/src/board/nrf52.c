/*
 * nRF52840 on the nRF52840-DK: UARTE0 on P0.06 (TX) and P0.08 (RX), wired to
 * the J-Link virtual COM port.  The core runs at 64 MHz from the external
 * crystal (HFXO), started here.
 *
 * UARTE moves data by EasyDMA, so transmit data is copied into a RAM buffer
 * and reception uses one-byte DMA transfers chained by the ENDRX_STARTRX
 * shortcut into a small ring.
 *
 * NOTE: written from the nRF52840 product specification and built here, but
 * never run on a board in this repository's tests.
 */
#include <stdint.h>
#include <string.h>

#include "board.h"

#define REG(addr) (*(volatile uint32_t *)(addr))

#define CLOCK_TASKS_HFCLKSTART REG(0x40000000UL)
#define CLOCK_EVENTS_HFCLKSTARTED REG(0x40000100UL)

#define UARTE0_BASE 0x40002000UL
#define UARTE_TASKS_STARTRX REG(UARTE0_BASE + 0x000)
#define UARTE_TASKS_STARTTX REG(UARTE0_BASE + 0x008)
#define UARTE_EVENTS_ENDRX REG(UARTE0_BASE + 0x110)
#define UARTE_EVENTS_ENDTX REG(UARTE0_BASE + 0x120)
#define UARTE_EVENTS_RXSTARTED REG(UARTE0_BASE + 0x14C)
#define UARTE_SHORTS REG(UARTE0_BASE + 0x200)
#define UARTE_ENABLE REG(UARTE0_BASE + 0x500)
#define UARTE_PSEL_RTS REG(UARTE0_BASE + 0x508)
#define UARTE_PSEL_TXD REG(UARTE0_BASE + 0x50C)
#define UARTE_PSEL_CTS REG(UARTE0_BASE + 0x510)
#define UARTE_PSEL_RXD REG(UARTE0_BASE + 0x514)
#define UARTE_BAUDRATE REG(UARTE0_BASE + 0x524)
#define UARTE_RXD_PTR REG(UARTE0_BASE + 0x534)
#define UARTE_RXD_MAXCNT REG(UARTE0_BASE + 0x538)
#define UARTE_TXD_PTR REG(UARTE0_BASE + 0x544)
#define UARTE_TXD_MAXCNT REG(UARTE0_BASE + 0x548)
#define UARTE_CONFIG REG(UARTE0_BASE + 0x56C)

#define UARTE_BAUDRATE_115200 0x01D7E000UL
#define UARTE_SHORTS_ENDRX_STARTRX (1UL << 5)
#define PIN_TXD 6U
#define PIN_RXD 8U
#define RX_RING_BYTES 64U

static uint8_t g_tx_buffer[64];
static volatile uint8_t g_rx_ring[RX_RING_BYTES];
static uint32_t g_rx_write; /* slot the DMA fills next */
static uint32_t g_rx_read;

void board_init(void)
{
    CLOCK_EVENTS_HFCLKSTARTED = 0;
    CLOCK_TASKS_HFCLKSTART = 1;
    while (!CLOCK_EVENTS_HFCLKSTARTED) {
    }

    UARTE_PSEL_TXD = PIN_TXD;
    UARTE_PSEL_RXD = PIN_RXD;
    UARTE_PSEL_RTS = 0xFFFFFFFFUL; /* disconnected */
    UARTE_PSEL_CTS = 0xFFFFFFFFUL;
    UARTE_BAUDRATE = UARTE_BAUDRATE_115200;
    UARTE_CONFIG = 0; /* 8N1, no flow control */
    UARTE_ENABLE = 8;

    UARTE_SHORTS = UARTE_SHORTS_ENDRX_STARTRX;
    UARTE_RXD_PTR = (uint32_t)&g_rx_ring[0];
    UARTE_RXD_MAXCNT = 1;
    UARTE_EVENTS_RXSTARTED = 0;
    UARTE_TASKS_STARTRX = 1;
}

void board_uart_write(const uint8_t *data, size_t len)
{
    while (len > 0) {
        size_t chunk = len < sizeof g_tx_buffer ? len : sizeof g_tx_buffer;
        memcpy(g_tx_buffer, data, chunk);
        UARTE_EVENTS_ENDTX = 0;
        UARTE_TXD_PTR = (uint32_t)g_tx_buffer;
        UARTE_TXD_MAXCNT = chunk;
        UARTE_TASKS_STARTTX = 1;
        while (!UARTE_EVENTS_ENDTX) {
        }
        data += chunk;
        len -= chunk;
    }
}

int board_uart_read_byte(void)
{
    /* RXD.PTR is double-buffered: after RXSTARTED, point it at the slot for
     * the transfer that the shortcut starts next. */
    if (UARTE_EVENTS_RXSTARTED) {
        UARTE_EVENTS_RXSTARTED = 0;
        UARTE_RXD_PTR = (uint32_t)&g_rx_ring[(g_rx_write + 1U) % RX_RING_BYTES];
    }
    if (UARTE_EVENTS_ENDRX) {
        UARTE_EVENTS_ENDRX = 0;
        g_rx_write = (g_rx_write + 1U) % RX_RING_BYTES;
    }
    if (g_rx_read == g_rx_write) {
        return -1;
    }
    int value = g_rx_ring[g_rx_read];
    g_rx_read = (g_rx_read + 1U) % RX_RING_BYTES;
    return value;
}
