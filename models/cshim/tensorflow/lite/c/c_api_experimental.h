/* imageapid's own declarations of the TFLite 2.9 experimental C API entry points that
 * github.com/mattn/go-tflite includes but tfjs-tflite-node does not ship a header for.
 * The symbols themselves are exported by libtensorflowlite_c.so. */
#ifndef IMAGEAPID_TFLITE_C_API_EXPERIMENTAL_H_
#define IMAGEAPID_TFLITE_C_API_EXPERIMENTAL_H_

#include "tensorflow/lite/c/c_api.h"
#include "tensorflow/lite/c/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef int TfLiteBuiltinOperator;

TfLiteStatus TfLiteInterpreterResetVariableTensors(TfLiteInterpreter* interpreter);

void TfLiteInterpreterOptionsAddBuiltinOp(TfLiteInterpreterOptions* options,
                                          TfLiteBuiltinOperator op,
                                          const TfLiteRegistration* registration,
                                          int32_t min_version, int32_t max_version);

void TfLiteInterpreterOptionsAddCustomOp(TfLiteInterpreterOptions* options,
                                         const char* name,
                                         const TfLiteRegistration* registration,
                                         int32_t min_version, int32_t max_version);

#ifdef __cplusplus
}
#endif

#endif
