#version 450
#extension GL_GOOGLE_include_directive : require
// ONNX Where for elements of 2 words (int64 as word pairs); see Select.glsl.
#define WORDS 2u
#include "Select.glsl"
