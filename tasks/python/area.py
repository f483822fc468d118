"""The `area` task in Python: the area of a rectangle (wasp:area/area)."""

from wit_world import exports
from wit_world.imports import log

S64 = range(-(2**63), 2**63)


class Area(exports.Area):
    def area(self, w: int, h: int) -> int:
        log.log(log.Level.DEBUG, f"area of {w} x {h}")
        result = w * h
        if result not in S64:
            # An uncaught exception traps the call; its message reaches the error.
            raise OverflowError(f"area overflow: {w} * {h} does not fit in s64")
        return result
