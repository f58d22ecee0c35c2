// Tree reductions across one 256-invocation workgroup through shared memory, for the row
// kernels (softmax.comp, layernorm.comp, reduce.comp). Every invocation of the workgroup must
// call them in the same order (they hold barriers); every invocation gets the result.
shared float workgroupPartial[256];

float workgroupSum(float value) {
    uint t = gl_LocalInvocationID.x;
    workgroupPartial[t] = value;
    barrier();
    for (uint s = 128u; s > 0u; s >>= 1) {
        if (t < s) workgroupPartial[t] += workgroupPartial[t + s];
        barrier();
    }
    float result = workgroupPartial[0];
    barrier();  // everyone has read the result before the array is reused
    return result;
}

float workgroupMax(float value) {
    uint t = gl_LocalInvocationID.x;
    workgroupPartial[t] = value;
    barrier();
    for (uint s = 128u; s > 0u; s >>= 1) {
        if (t < s) workgroupPartial[t] = max(workgroupPartial[t], workgroupPartial[t + s]);
        barrier();
    }
    float result = workgroupPartial[0];
    barrier();
    return result;
}

#define NEGATIVE_INFINITY uintBitsToFloat(0xff800000u)
