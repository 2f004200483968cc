/*
 * Serial protocol between the harness and the firmware.  The host side is
 * harness/hil/protocol.py; both must change together.
 *
 * Frame layout (all integers little-endian):
 *
 *   offset  size  field
 *   0       2     magic 0xA5 0x5A
 *   2       2     payload length N, at most PROTOCOL_MAX_PAYLOAD
 *   4       1     command
 *   5       1     sequence number, echoed in the reply
 *   6       N     payload
 *   6+N     4     CRC-32 (IEEE 802.3, as zlib.crc32) of bytes 2 .. 5+N
 *
 * Every request gets exactly one frame back: the reply (command | 0x80) or
 * an error frame (PROTOCOL_CMD_ERROR, payload: error code, request command,
 * message text).  At boot the device sends PROTOCOL_CMD_BOOT unprompted so
 * the host can tell that the device restarted.  CRC, length and timeout
 * errors mean the request was damaged in transit, and the host resends it.
 */
#ifndef HARNESS_PROTOCOL_H
#define HARNESS_PROTOCOL_H

#include <stdint.h>

#define PROTOCOL_VERSION 1
#define PROTOCOL_MAGIC0 0xA5
#define PROTOCOL_MAGIC1 0x5A
#define PROTOCOL_HEADER_BYTES 6
#define PROTOCOL_CRC_BYTES 4
#define PROTOCOL_MAX_PAYLOAD 1024
#define PROTOCOL_REPLY_FLAG 0x80

enum protocol_command {
    PROTOCOL_CMD_IDENTIFY = 0x01,
    PROTOCOL_CMD_LOAD_INPUT = 0x02,
    PROTOCOL_CMD_RUN = 0x03,
    PROTOCOL_CMD_MEMORY = 0x04,
    PROTOCOL_CMD_CALIBRATE = 0x05,
    PROTOCOL_CMD_RESET = 0x06,
    PROTOCOL_CMD_EXIT = 0x07,
    PROTOCOL_CMD_INPUT_FILE = 0x08,      /* emulated builds: open a host file of inputs */
    PROTOCOL_CMD_LOAD_INPUT_FILE = 0x09, /* emulated builds: load one input from it */
    PROTOCOL_CMD_BOOT = 0x7E,
    PROTOCOL_CMD_ERROR = 0x7F,
};

enum protocol_error {
    PROTOCOL_ERR_CRC = 1,
    PROTOCOL_ERR_LENGTH = 2,
    PROTOCOL_ERR_UNKNOWN_COMMAND = 3,
    PROTOCOL_ERR_BAD_PAYLOAD = 4,
    PROTOCOL_ERR_INPUT_INCOMPLETE = 5,
    PROTOCOL_ERR_INVOKE_FAILED = 6,
    PROTOCOL_ERR_UNSUPPORTED = 7,
    PROTOCOL_ERR_TIMEOUT = 8, /* a frame stopped arriving mid-way */
};

/* A frame whose bytes stop arriving for this many counter ticks is dropped
 * with PROTOCOL_ERR_TIMEOUT, so a damaged length field cannot make the
 * device swallow the next request.  A quarter second at the profile's clock;
 * under QEMU the SysTick rate can differ from that clock (168 MHz on
 * netduinoplus2, so 24 ms there), still far above the gaps inside a frame. */
#define PROTOCOL_RX_TIMEOUT_TICKS (BOARD_CLOCK_HZ / 4U)

uint32_t protocol_crc32(uint32_t crc, const uint8_t *data, uint32_t len);

/* Poll the UART and serve requests forever. */
void protocol_serve(void) __attribute__((noreturn));

/* Send the boot announcement. */
void protocol_announce_boot(void);

#endif
