/*
 * Device side of the serial protocol (frame layout in protocol.h).
 *
 * Reception is a byte-wise state machine: hunt for the two magic bytes, read
 * the header, the payload and the CRC, then dispatch.  A bad length or CRC
 * sends an error frame and returns to hunting, which resynchronizes after
 * garbage on the line.
 */
#include "protocol.h"

#include <stdint.h>
#include <string.h>

#include "board.h"
#include "cycles.h"
#include "runtime.h"
#include "semihost.h"
#include "stack.h"

#ifndef FIRMWARE_VERSION
#define FIRMWARE_VERSION "1.0.0"
#endif

#define SCB_AIRCR (*(volatile uint32_t *)0xE000ED0CUL)

enum rx_state { RX_MAGIC0, RX_MAGIC1, RX_HEADER, RX_PAYLOAD, RX_CRC };

static uint8_t g_rx[PROTOCOL_HEADER_BYTES + PROTOCOL_MAX_PAYLOAD + PROTOCOL_CRC_BYTES];
static uint8_t g_tx[PROTOCOL_HEADER_BYTES + PROTOCOL_MAX_PAYLOAD + PROTOCOL_CRC_BYTES];

/* Bytes of the current input written since the last chunk at offset 0. */
static uint32_t g_input_loaded;

#if HARNESS_EMULATED
/* Host file of inputs opened by PROTOCOL_CMD_INPUT_FILE, or -1. */
static int32_t g_input_file = -1;
#endif

uint32_t protocol_crc32(uint32_t crc, const uint8_t *data, uint32_t len)
{
    /* Reflected CRC-32, polynomial 0xEDB88320, nibble table. */
    static const uint32_t table[16] = {
        0x00000000UL, 0x1DB71064UL, 0x3B6E20C8UL, 0x26D930ACUL,
        0x76DC4190UL, 0x6B6B51F4UL, 0x4DB26158UL, 0x5005713CUL,
        0xEDB88320UL, 0xF00F9344UL, 0xD6D6A3E8UL, 0xCB61B38CUL,
        0x9B64C2B0UL, 0x86D3D2D4UL, 0xA00AE278UL, 0xBDBDF21CUL,
    };
    crc = ~crc;
    for (uint32_t i = 0; i < len; i++) {
        crc ^= data[i];
        crc = (crc >> 4) ^ table[crc & 0xFU];
        crc = (crc >> 4) ^ table[crc & 0xFU];
    }
    return ~crc;
}

static void put_u16(uint8_t *out, uint16_t value)
{
    out[0] = (uint8_t)value;
    out[1] = (uint8_t)(value >> 8);
}

static void put_u32(uint8_t *out, uint32_t value)
{
    for (int i = 0; i < 4; i++) {
        out[i] = (uint8_t)(value >> (8 * i));
    }
}

static void put_u64(uint8_t *out, uint64_t value)
{
    put_u32(out, (uint32_t)value);
    put_u32(out + 4, (uint32_t)(value >> 32));
}

static uint32_t get_u32(const uint8_t *in)
{
    return (uint32_t)in[0] | ((uint32_t)in[1] << 8) | ((uint32_t)in[2] << 16) |
           ((uint32_t)in[3] << 24);
}

/* Payload area of the transmit buffer, filled by the command handlers. */
static uint8_t *tx_payload(void) { return g_tx + PROTOCOL_HEADER_BYTES; }

static void send_frame(uint8_t command, uint8_t sequence, uint32_t payload_len)
{
    g_tx[0] = PROTOCOL_MAGIC0;
    g_tx[1] = PROTOCOL_MAGIC1;
    put_u16(g_tx + 2, (uint16_t)payload_len);
    g_tx[4] = command;
    g_tx[5] = sequence;
    uint32_t crc = protocol_crc32(0, g_tx + 2, 4 + payload_len);
    put_u32(g_tx + PROTOCOL_HEADER_BYTES + payload_len, crc);
    board_uart_write(g_tx, PROTOCOL_HEADER_BYTES + payload_len + PROTOCOL_CRC_BYTES);
}

static void send_error(uint8_t sequence, uint8_t request, enum protocol_error code,
                       const char *message)
{
    uint8_t *out = tx_payload();
    uint32_t len = (uint32_t)strlen(message);
    if (len > PROTOCOL_MAX_PAYLOAD - 2) {
        len = PROTOCOL_MAX_PAYLOAD - 2;
    }
    out[0] = (uint8_t)code;
    out[1] = request;
    memcpy(out + 2, message, len);
    send_frame(PROTOCOL_CMD_ERROR, sequence, 2 + len);
}

static uint32_t put_string(uint8_t *out, const char *text)
{
    uint32_t len = (uint32_t)strlen(text) + 1U;
    memcpy(out, text, len);
    return len;
}

void protocol_announce_boot(void)
{
    uint8_t *out = tx_payload();
    out[0] = PROTOCOL_VERSION;
    uint32_t len = 1 + put_string(out + 1, BOARD_NAME);
    send_frame(PROTOCOL_CMD_BOOT, 0, len);
}

static void handle_identify(uint8_t sequence)
{
    const struct runtime_info *info = &g_runtime_info;
    uint8_t *out = tx_payload();
    out[0] = PROTOCOL_VERSION;
    out[1] = (uint8_t)cycles_source();
    put_u16(out + 2, PROTOCOL_MAX_PAYLOAD);
    put_u32(out + 4, info->input_bytes);
    put_u32(out + 8, info->output_bytes);
    put_u32(out + 12, info->arena_bytes);
    memcpy(out + 16, &info->input_scale, 4);
    put_u32(out + 20, (uint32_t)info->input_zero_point);
    memcpy(out + 24, &info->output_scale, 4);
    put_u32(out + 28, (uint32_t)info->output_zero_point);
    put_u32(out + 32, BOARD_CLOCK_HZ);
    out[36] = info->input_rank;
    out[37] = info->output_rank;
    for (int i = 0; i < RUNTIME_MAX_RANK; i++) {
        put_u16(out + 38 + 2 * i, info->input_shape[i]);
        put_u16(out + 38 + 2 * RUNTIME_MAX_RANK + 2 * i, info->output_shape[i]);
    }
    uint32_t len = 38 + 4 * RUNTIME_MAX_RANK;
    len += put_string(out + len, BOARD_NAME);
    len += put_string(out + len, info->runtime_name);
    len += put_string(out + len, FIRMWARE_VERSION);
    len += put_string(out + len, info->model_hash);
    send_frame(PROTOCOL_CMD_IDENTIFY | PROTOCOL_REPLY_FLAG, sequence, len);
}

static void handle_load_input(uint8_t sequence, const uint8_t *payload, uint32_t len)
{
    if (len < 4) {
        send_error(sequence, PROTOCOL_CMD_LOAD_INPUT, PROTOCOL_ERR_BAD_PAYLOAD,
                   "load input needs a 4-byte offset");
        return;
    }
    uint32_t offset = get_u32(payload);
    uint32_t chunk = len - 4;
    uint32_t total = g_runtime_info.input_bytes;
    if (offset > total || chunk > total - offset) {
        send_error(sequence, PROTOCOL_CMD_LOAD_INPUT, PROTOCOL_ERR_BAD_PAYLOAD,
                   "chunk past the end of the input tensor");
        return;
    }
    /* Chunks arrive in order; offset 0 starts a new input, and a repeated
     * chunk (a retry) is written again without harm. */
    if (offset == 0) {
        g_input_loaded = 0;
    }
    if (offset > g_input_loaded) {
        send_error(sequence, PROTOCOL_CMD_LOAD_INPUT, PROTOCOL_ERR_BAD_PAYLOAD,
                   "chunk leaves a gap in the input; restart at offset 0");
        return;
    }
    memcpy(runtime_input() + offset, payload + 4, chunk);
    if (offset + chunk > g_input_loaded) {
        g_input_loaded = offset + chunk;
    }
    put_u32(tx_payload(), g_input_loaded);
    send_frame(PROTOCOL_CMD_LOAD_INPUT | PROTOCOL_REPLY_FLAG, sequence, 4);
}

static void handle_run(uint8_t sequence)
{
    const struct runtime_info *info = &g_runtime_info;
    if (g_input_loaded != info->input_bytes) {
        send_error(sequence, PROTOCOL_CMD_RUN, PROTOCOL_ERR_INPUT_INCOMPLETE,
                   "input tensor not fully loaded");
        return;
    }
    if (info->output_bytes + 12U > PROTOCOL_MAX_PAYLOAD) {
        send_error(sequence, PROTOCOL_CMD_RUN, PROTOCOL_ERR_UNSUPPORTED,
                   "output tensor larger than one frame");
        return;
    }
    uint64_t start = cycles_now();
    int status = runtime_invoke();
    uint64_t cycles = cycles_now() - start;

    uint8_t *out = tx_payload();
    put_u32(out, (uint32_t)status);
    put_u64(out + 4, cycles);
    memcpy(out + 12, runtime_output(), info->output_bytes);
    send_frame(PROTOCOL_CMD_RUN | PROTOCOL_REPLY_FLAG, sequence, 12 + info->output_bytes);
}

static void handle_memory(uint8_t sequence)
{
    uint8_t *out = tx_payload();
    put_u32(out, g_runtime_info.arena_bytes);
    put_u32(out + 4, runtime_arena_used_bytes());
    put_u32(out + 8, stack_size_bytes());
    put_u32(out + 12, stack_high_water_bytes());
    send_frame(PROTOCOL_CMD_MEMORY | PROTOCOL_REPLY_FLAG, sequence, 16);
}

static void handle_calibrate(uint8_t sequence, const uint8_t *payload, uint32_t len)
{
    if (len != 4) {
        send_error(sequence, PROTOCOL_CMD_CALIBRATE, PROTOCOL_ERR_BAD_PAYLOAD,
                   "calibrate needs a 4-byte iteration count");
        return;
    }
    uint32_t iterations = get_u32(payload);
    uint64_t start = cycles_now();
    cycles_spin(iterations);
    uint64_t cycles = cycles_now() - start;
    put_u64(tx_payload(), cycles);
    send_frame(PROTOCOL_CMD_CALIBRATE | PROTOCOL_REPLY_FLAG, sequence, 8);
}

static void handle_reset(uint8_t sequence)
{
    send_frame(PROTOCOL_CMD_RESET | PROTOCOL_REPLY_FLAG, sequence, 0);
    /* SYSRESETREQ: the core restarts from the reset vector and announces boot. */
    __asm volatile("dsb" ::: "memory");
    SCB_AIRCR = (0x05FAUL << 16) | (1UL << 2);
    for (;;) {
    }
}

#if !HARNESS_EMULATED
/* Reply to a command that needs semihosting, which only emulated builds use. */
static void send_needs_semihosting(uint8_t sequence, uint8_t command)
{
    send_error(sequence, command, PROTOCOL_ERR_UNSUPPORTED,
               "this command needs semihosting, which only emulated builds use");
}
#endif

static void handle_exit(uint8_t sequence, const uint8_t *payload, uint32_t len)
{
#if HARNESS_EMULATED
    int code = len == 4 ? (int)get_u32(payload) : 0;
    send_frame(PROTOCOL_CMD_EXIT | PROTOCOL_REPLY_FLAG, sequence, 0);
    semihost_exit(code);
#else
    (void)payload;
    (void)len;
    send_needs_semihosting(sequence, PROTOCOL_CMD_EXIT);
#endif
}

/*
 * Inputs through semihosting, on emulated builds only. QEMU's UART takes one
 * byte at a time, and each byte waits for the emulator's I/O thread to hand
 * it to the CPU thread. A 600-byte input took 16 ms or more, and several
 * hundred ms while other jobs kept the host's cores busy. A semihosting
 * read is one trap in the CPU thread. The host writes all inputs to one
 * file and opens it with INPUT_FILE (payload: the path). It then loads each
 * input with LOAD_INPUT_FILE (payload: u32 byte offset). Both reply like
 * LOAD_INPUT.
 */
static void handle_input_file(uint8_t sequence, const uint8_t *payload, uint32_t len)
{
#if HARNESS_EMULATED
    if (len == 0) {
        send_error(sequence, PROTOCOL_CMD_INPUT_FILE, PROTOCOL_ERR_BAD_PAYLOAD, "input file needs a path");
        return;
    }
    /* The payload sits in the receive buffer, whose CRC bytes follow it and
     * are already checked: terminate the path there instead of copying it. */
    char *path = (char *)(g_rx + PROTOCOL_HEADER_BYTES);
    (void)payload;
    path[len] = '\0';
    if (g_input_file >= 0) {
        semihost_close(g_input_file);
    }
    g_input_file = semihost_open_read(path, len);
    int32_t length = g_input_file >= 0 ? semihost_file_length(g_input_file) : -1;
    if (length < 0) {
        send_error(sequence, PROTOCOL_CMD_INPUT_FILE, PROTOCOL_ERR_BAD_PAYLOAD,
                   "the emulator's host cannot open the input file");
        return;
    }
    put_u32(tx_payload(), (uint32_t)length);
    send_frame(PROTOCOL_CMD_INPUT_FILE | PROTOCOL_REPLY_FLAG, sequence, 4);
#else
    (void)payload;
    (void)len;
    send_needs_semihosting(sequence, PROTOCOL_CMD_INPUT_FILE);
#endif
}

static void handle_load_input_file(uint8_t sequence, const uint8_t *payload, uint32_t len)
{
#if HARNESS_EMULATED
    if (len != 4) {
        send_error(sequence, PROTOCOL_CMD_LOAD_INPUT_FILE, PROTOCOL_ERR_BAD_PAYLOAD,
                   "load input file needs a 4-byte offset");
        return;
    }
    if (g_input_file < 0) {
        send_error(sequence, PROTOCOL_CMD_LOAD_INPUT_FILE, PROTOCOL_ERR_BAD_PAYLOAD,
                   "no input file is open");
        return;
    }
    g_input_loaded = 0;
    if (semihost_read_at(g_input_file, get_u32(payload), runtime_input(), g_runtime_info.input_bytes) != 0) {
        send_error(sequence, PROTOCOL_CMD_LOAD_INPUT_FILE, PROTOCOL_ERR_BAD_PAYLOAD,
                   "input file ends before the input tensor");
        return;
    }
    g_input_loaded = g_runtime_info.input_bytes;
    put_u32(tx_payload(), g_input_loaded);
    send_frame(PROTOCOL_CMD_LOAD_INPUT_FILE | PROTOCOL_REPLY_FLAG, sequence, 4);
#else
    (void)payload;
    (void)len;
    send_needs_semihosting(sequence, PROTOCOL_CMD_LOAD_INPUT_FILE);
#endif
}

static void dispatch(uint8_t command, uint8_t sequence, const uint8_t *payload, uint32_t len)
{
    switch (command) {
    case PROTOCOL_CMD_IDENTIFY:
        handle_identify(sequence);
        break;
    case PROTOCOL_CMD_LOAD_INPUT:
        handle_load_input(sequence, payload, len);
        break;
    case PROTOCOL_CMD_RUN:
        handle_run(sequence);
        break;
    case PROTOCOL_CMD_MEMORY:
        handle_memory(sequence);
        break;
    case PROTOCOL_CMD_CALIBRATE:
        handle_calibrate(sequence, payload, len);
        break;
    case PROTOCOL_CMD_RESET:
        handle_reset(sequence);
        break;
    case PROTOCOL_CMD_EXIT:
        handle_exit(sequence, payload, len);
        break;
    case PROTOCOL_CMD_INPUT_FILE:
        handle_input_file(sequence, payload, len);
        break;
    case PROTOCOL_CMD_LOAD_INPUT_FILE:
        handle_load_input_file(sequence, payload, len);
        break;
    default:
        send_error(sequence, command, PROTOCOL_ERR_UNKNOWN_COMMAND, "unknown command");
        break;
    }
}

void protocol_serve(void)
{
    enum rx_state state = RX_MAGIC0;
    uint32_t received = 0;
    uint32_t payload_len = 0;
    uint64_t last_byte_ticks = 0;

    for (;;) {
        int byte = board_uart_read_byte();
        if (byte < 0) {
            if (state != RX_MAGIC0 && state != RX_MAGIC1 &&
                cycles_now() - last_byte_ticks > PROTOCOL_RX_TIMEOUT_TICKS) {
                /* The sequence number is known once the header is complete. */
                uint8_t sequence = received >= PROTOCOL_HEADER_BYTES ? g_rx[5] : 0;
                uint8_t command = received >= 5 ? g_rx[4] : 0;
                send_error(sequence, command, PROTOCOL_ERR_TIMEOUT, "frame incomplete: bytes stopped arriving");
                state = RX_MAGIC0;
            }
            board_uart_wait();
            continue;
        }
        last_byte_ticks = cycles_now();
        uint8_t value = (uint8_t)byte;

        switch (state) {
        case RX_MAGIC0:
            if (value == PROTOCOL_MAGIC0) {
                state = RX_MAGIC1;
            }
            break;
        case RX_MAGIC1:
            if (value == PROTOCOL_MAGIC1) {
                state = RX_HEADER;
                received = 2;
            } else if (value != PROTOCOL_MAGIC0) {
                state = RX_MAGIC0;
            }
            break;
        case RX_HEADER:
            g_rx[received++] = value;
            if (received == PROTOCOL_HEADER_BYTES) {
                payload_len = (uint32_t)g_rx[2] | ((uint32_t)g_rx[3] << 8);
                if (payload_len > PROTOCOL_MAX_PAYLOAD) {
                    send_error(g_rx[5], g_rx[4], PROTOCOL_ERR_LENGTH,
                               "payload length over the maximum");
                    state = RX_MAGIC0;
                } else {
                    state = payload_len ? RX_PAYLOAD : RX_CRC;
                }
            }
            break;
        case RX_PAYLOAD:
            g_rx[received++] = value;
            if (received == PROTOCOL_HEADER_BYTES + payload_len) {
                state = RX_CRC;
            }
            break;
        case RX_CRC:
            g_rx[received++] = value;
            if (received == PROTOCOL_HEADER_BYTES + payload_len + PROTOCOL_CRC_BYTES) {
                uint32_t expected = get_u32(g_rx + PROTOCOL_HEADER_BYTES + payload_len);
                uint32_t actual = protocol_crc32(0, g_rx + 2, 4 + payload_len);
                if (expected != actual) {
                    send_error(g_rx[5], g_rx[4], PROTOCOL_ERR_CRC, "CRC mismatch");
                } else {
                    dispatch(g_rx[4], g_rx[5], g_rx + PROTOCOL_HEADER_BYTES, payload_len);
                }
                state = RX_MAGIC0;
            }
            break;
        }
    }
}
