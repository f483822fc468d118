// The `pow10` task in C: x^10 (wasp:pow10/pow10).

#include <stdio.h>
#include <stdlib.h>

#include "task.h"

int64_t exports_wasp_pow10_pow10_pow10(int64_t x) {
  int64_t result = 1;
  for (int i = 0; i < 10; i++) {
    if (__builtin_mul_overflow(result, x, &result)) {
      // abort() traps the call; the host puts the end of stderr in the error.
      fprintf(stderr, "pow10 overflow: %lld^10 does not fit in s64\n",
              (long long)x);
      abort();
    }
  }
  return result;
}
