// OpenBLAS's CBLAS interface plus its threading controls (Debian: libopenblas-dev).
#ifndef FULCRUM_CBLAS_SHIM_H
#define FULCRUM_CBLAS_SHIM_H
#include <cblas.h>
#endif
