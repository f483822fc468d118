// The `getpid` task in C: which engine ran this call (wasp:getpid/getpid).

#include <stdio.h>
#include <stdlib.h>

#include "task.h"

uint32_t exports_wasp_getpid_getpid_getpid(void) {
  return wasp_task_identity_engine_id();
}

void exports_wasp_getpid_getpid_whoami(task_string_t *ret) {
  task_string_t tenant, task_id;
  wasp_task_identity_tenant(&tenant);
  wasp_task_identity_task_id(&task_id);
  char *line = NULL;
  int len = asprintf(&line, "engine %u tenant %.*s task %.*s",
                     (unsigned)wasp_task_identity_engine_id(),
                     (int)tenant.len, (const char *)tenant.ptr,
                     (int)task_id.len, (const char *)task_id.ptr);
  task_string_free(&tenant);
  task_string_free(&task_id);
  if (len < 0) {
    fprintf(stderr, "whoami: out of memory\n");
    abort();
  }
  printf("%s\n", line);
  fflush(stdout);
  fprintf(stderr, "whoami on stderr\n");
  task_string_t message = {(uint8_t *)line, (size_t)len};
  wasp_task_log_log(WASP_TASK_LOG_LEVEL_INFO, &message);
  // The result owns `line`; the bindings free it after the call returns.
  *ret = message;
}
