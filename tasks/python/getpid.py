"""The `getpid` task in Python: which engine ran this call (wasp:getpid/getpid)."""

import sys

from wit_world import exports
from wit_world.imports import identity, log


class Getpid(exports.Getpid):
    def getpid(self) -> int:
        return identity.engine_id()

    def whoami(self) -> str:
        line = f"engine {identity.engine_id()} tenant {identity.tenant()} task {identity.task_id()}"
        print(line, flush=True)
        print("whoami on stderr", file=sys.stderr, flush=True)
        log.log(log.Level.INFO, line)
        return line
