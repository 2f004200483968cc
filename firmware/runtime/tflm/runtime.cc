// Runtime glue for TensorFlow Lite Micro: the interpreter over the model's
// flatbuffer (model_data.cc) with the reference kernels of the op set the
// harness's networks use (the generated runtime's op set;
// tflm_sources.py's KERNEL_SOURCES must list the same ops).
//
// This file includes nothing that changes between models (see
// tflm_model.h), so it is compiled once per board. model_info.c contains
// the model's identify record, arena and buffers.
//
// The resolver and interpreter live in static storage, built once by
// runtime_init with placement new and never destroyed. A function-local
// static object would register its destructor with __cxa_atexit, which
// needs __dso_handle from the C runtime start files, and this firmware does
// not link those.

#include <stdint.h>

#include <new>

#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"
#include "tflm_model.h"

extern "C" {
#include "runtime.h"
}

namespace {

using OpResolver = tflite::MicroMutableOpResolver<16>;

alignas(OpResolver) uint8_t g_resolver_storage[sizeof(OpResolver)];
alignas(tflite::MicroInterpreter) uint8_t g_interpreter_storage[sizeof(tflite::MicroInterpreter)];
tflite::MicroInterpreter *g_interpreter = nullptr;
int g_init_status = -1;

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

// Status -4: the interpreter's tensors differ from the identify record
// (model.h), which the host relies on for the byte counts it sends.
int check_tensors(tflite::MicroInterpreter &interpreter)
{
    const TfLiteTensor *input = interpreter.input(0);
    const TfLiteTensor *output = interpreter.output(0);
    if (input->type != kTfLiteInt8 || output->type != kTfLiteInt8 ||
        input->bytes != g_runtime_info.input_bytes || output->bytes != g_runtime_info.output_bytes) {
        return -4;
    }
    return 0;
}

}  // namespace

extern "C" {

// Statuses: 0 ready, -2 AllocateTensors failed (arena too small or an op
// missing from add_ops), -4 tensor mismatch (check_tensors).
int runtime_init(void)
{
    if (g_interpreter != nullptr) {
        return g_init_status;
    }
    OpResolver *resolver = new (g_resolver_storage) OpResolver();
    add_ops(*resolver);
    const tflite::Model *model = tflite::GetModel(g_model_data);
    g_interpreter = new (g_interpreter_storage)
        tflite::MicroInterpreter(model, *resolver, g_tflm_arena, g_runtime_info.arena_bytes);
    g_init_status = g_interpreter->AllocateTensors() == kTfLiteOk ? check_tensors(*g_interpreter) : -2;
    return g_init_status;
}

// Returns the runtime_init status when it failed, -3 when Invoke fails.
int runtime_invoke(void)
{
    if (g_init_status != 0) {
        return g_init_status;
    }
    if (g_interpreter->Invoke() != kTfLiteOk) {
        return -3;
    }
    const int8_t *output = g_interpreter->output(0)->data.int8;
    for (uint32_t i = 0; i < g_runtime_info.output_bytes; i++) {
        g_tflm_output[i] = output[i];
    }
    return 0;
}

int8_t *runtime_input(void)
{
    return g_init_status == 0 ? g_interpreter->input(0)->data.int8 : g_tflm_input_fallback;
}

const int8_t *runtime_output(void) { return g_tflm_output; }

uint32_t runtime_arena_used_bytes(void)
{
    return g_init_status == 0 ? (uint32_t)g_interpreter->arena_used_bytes() : 0;
}

}  // extern "C"
