/*
 * Inference runtime interface, implemented by the glue of each runtime
 * (runtime/generated/runtime.c, runtime/tflm/runtime.cc).  The glue is the
 * only firmware code that includes the model's header, so a new model
 * recompiles the model sources and the glue and nothing else.
 *
 * Ownership: the input and output buffers are static arrays owned by the
 * runtime.  The protocol writes input bytes into runtime_input() and reads
 * the result from runtime_output() after runtime_invoke() returned 0.
 */
#ifndef HARNESS_RUNTIME_H
#define HARNESS_RUNTIME_H

#include <stdint.h>

#define RUNTIME_MAX_RANK 6

struct runtime_info {
    const char *runtime_name;    /* "generated" or "tflm" */
    const char *model_hash;      /* MODEL_HASH: 16 hex digits of SHA-256(model.tflite) */
    uint32_t input_bytes;        /* MODEL_INPUT_BYTES */
    uint32_t output_bytes;       /* MODEL_OUTPUT_BYTES */
    uint32_t arena_bytes;        /* MODEL_ARENA_BYTES (TFLM: arena size given to the interpreter) */
    float input_scale;
    int32_t input_zero_point;
    float output_scale;
    int32_t output_zero_point;
    uint8_t input_rank;          /* 0: shape unknown (no export.json at build time) */
    uint8_t output_rank;
    uint16_t input_shape[RUNTIME_MAX_RANK];  /* NHWC, from export.json */
    uint16_t output_shape[RUNTIME_MAX_RANK];
};

extern const struct runtime_info g_runtime_info;

/* Initializer of g_runtime_info for a runtime built with the export's
 * model.h and the generated model_shape.h, which give everything but the
 * runtime's name, the model hash macro and the arena size. */
#define RUNTIME_INFO_FROM_MODEL_H(name, hash, arena)      \
    {                                                     \
        .runtime_name = (name),                           \
        .model_hash = (hash),                             \
        .input_bytes = MODEL_INPUT_BYTES,                 \
        .output_bytes = MODEL_OUTPUT_BYTES,               \
        .arena_bytes = (arena),                           \
        .input_scale = MODEL_INPUT_SCALE,                 \
        .input_zero_point = MODEL_INPUT_ZERO_POINT,       \
        .output_scale = MODEL_OUTPUT_SCALE,               \
        .output_zero_point = MODEL_OUTPUT_ZERO_POINT,     \
        .input_rank = MODEL_INPUT_RANK,                   \
        .output_rank = MODEL_OUTPUT_RANK,                 \
        .input_shape = MODEL_INPUT_SHAPE,                 \
        .output_shape = MODEL_OUTPUT_SHAPE,               \
    }

/* Prepare the runtime once at boot; returns 0 or a negative status. */
int runtime_init(void);

/* Run one inference on runtime_input(); returns 0 or a nonzero status. */
int runtime_invoke(void);

int8_t *runtime_input(void);
const int8_t *runtime_output(void);

/* Arena bytes in use after runtime_init (TFLM: arena_used_bytes()). */
uint32_t runtime_arena_used_bytes(void);

#endif
