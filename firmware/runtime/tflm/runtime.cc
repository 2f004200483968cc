// Runtime glue for TensorFlow Lite Micro: the model as a C array
// (model_data.cc), the interpreter with the reference kernels of the op
// set the harness's networks use, and a static arena of TFLM_ARENA_BYTES
// (from export.json tflm_arena_bytes, set by tflm_sources.py).
//
// NOTE: not compiled here (no TFLite Micro tree on the development
// machine); the op list mirrors the generated runtime's supported ops.

#include <stdint.h>

#include "model.h"
#include "model_data.h"
#include "model_shape.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

extern "C" {
#include "runtime.h"
}

namespace {

alignas(16) uint8_t g_arena[TFLM_ARENA_BYTES];
int8_t g_output[MODEL_OUTPUT_BYTES];
int g_init_status = -1;
tflite::MicroInterpreter *g_interpreter = nullptr;

using OpResolver = tflite::MicroMutableOpResolver<16>;

void add_ops(OpResolver &resolver)
{
    resolver.AddConv2D();
    resolver.AddDepthwiseConv2D();
    resolver.AddFullyConnected();
    resolver.AddAdd();
    resolver.AddMul();
    resolver.AddMean();
    resolver.AddAveragePool2D();
    resolver.AddMaxPool2D();
    resolver.AddPad();
    resolver.AddReshape();
    resolver.AddTranspose();
    resolver.AddHardSwish();
    resolver.AddLogistic();
    resolver.AddSoftmax();
    resolver.AddQuantize();
}

}  // namespace

extern "C" {

const struct runtime_info g_runtime_info = {
    "tflm",
    MODEL_DATA_HASH,
    MODEL_INPUT_BYTES,
    MODEL_OUTPUT_BYTES,
    TFLM_ARENA_BYTES,
    MODEL_INPUT_SCALE,
    MODEL_INPUT_ZERO_POINT,
    MODEL_OUTPUT_SCALE,
    MODEL_OUTPUT_ZERO_POINT,
    MODEL_INPUT_RANK,
    MODEL_OUTPUT_RANK,
    MODEL_INPUT_SHAPE,
    MODEL_OUTPUT_SHAPE,
};

int runtime_init(void)
{
    static OpResolver resolver;
    add_ops(resolver);
    const tflite::Model *model = tflite::GetModel(g_model_data);
    static tflite::MicroInterpreter interpreter(model, resolver, g_arena, sizeof g_arena);
    g_interpreter = &interpreter;
    g_init_status = interpreter.AllocateTensors() == kTfLiteOk ? 0 : -2;
    return g_init_status;
}

int runtime_invoke(void)
{
    if (g_init_status != 0) {
        return g_init_status;
    }
    if (g_interpreter->Invoke() != kTfLiteOk) {
        return -3;
    }
    const int8_t *output = g_interpreter->output(0)->data.int8;
    for (uint32_t i = 0; i < MODEL_OUTPUT_BYTES; i++) {
        g_output[i] = output[i];
    }
    return 0;
}

int8_t *runtime_input(void)
{
    static int8_t fallback[MODEL_INPUT_BYTES];
    return g_init_status == 0 ? g_interpreter->input(0)->data.int8 : fallback;
}

const int8_t *runtime_output(void) { return g_output; }

uint32_t runtime_arena_used_bytes(void)
{
    return g_init_status == 0 ? (uint32_t)g_interpreter->arena_used_bytes() : 0;
}

}  // extern "C"
