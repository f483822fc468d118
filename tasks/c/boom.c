// The `boom` task in C: fails on request (wasp:boom/boom).

#include <stdio.h>
#include <stdlib.h>

#include "task.h"

void exports_wasp_boom_boom_boom(task_string_t *message, task_string_t *ret) {
  (void)ret;
  // abort() traps the call; the host puts the end of stderr in the error.
  fprintf(stderr, "boom: %.*s\n", (int)message->len, (const char *)message->ptr);
  abort();
}

void exports_wasp_boom_boom_echo(task_string_t *message, task_string_t *ret) {
  // The argument's buffer becomes the result; the bindings free it.
  *ret = *message;
}
