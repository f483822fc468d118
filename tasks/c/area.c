// The `area` task in C: the area of a rectangle (wasp:area/area).

#include <stdio.h>
#include <stdlib.h>

#include "task.h"

int64_t exports_wasp_area_area_area(int64_t w, int64_t h) {
  int64_t area;
  if (__builtin_mul_overflow(w, h, &area)) {
    // abort() traps the call; the host puts the end of stderr in the error.
    fprintf(stderr, "area overflow: %lld * %lld does not fit in s64\n",
            (long long)w, (long long)h);
    abort();
  }
  return area;
}
