#version 450
#extension GL_GOOGLE_include_directive : require
// ONNX Where for elements of 1 word (float32, int32, bool); see Select.glsl.
#define WORDS 1u
#include "Select.glsl"
