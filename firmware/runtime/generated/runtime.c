/*
 * Runtime glue for the generated C runtime: adapts model_invoke() from the
 * export directory's model.h to the firmware's runtime interface.  The
 * generated code owns its arena; this file owns the input and output
 * buffers.
 */
#include <stdint.h>

#include "model.h"
#include "model_shape.h"
#include "runtime.h"

static int8_t g_input[MODEL_INPUT_BYTES > 0 ? MODEL_INPUT_BYTES : 1] __attribute__((aligned(16)));
static int8_t g_output[MODEL_OUTPUT_BYTES > 0 ? MODEL_OUTPUT_BYTES : 1] __attribute__((aligned(16)));

const struct runtime_info g_runtime_info = RUNTIME_INFO_FROM_MODEL_H("generated", MODEL_HASH, MODEL_ARENA_BYTES);

int runtime_init(void) { return 0; }

int runtime_invoke(void) { return model_invoke(g_input, g_output); }

int8_t *runtime_input(void) { return g_input; }

const int8_t *runtime_output(void) { return g_output; }

/* The generated code plans its arena statically, so all of it is in use. */
uint32_t runtime_arena_used_bytes(void) { return MODEL_ARENA_BYTES; }
