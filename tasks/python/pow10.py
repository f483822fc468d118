"""The `pow10` task in Python: x^10 (wasp:pow10/pow10)."""

from wit_world import exports

S64 = range(-(2**63), 2**63)


class Pow10(exports.Pow10):
    def pow10(self, x: int) -> int:
        result = x**10
        if result not in S64:
            # An uncaught exception traps the call; its message reaches the error.
            raise OverflowError(f"pow10 overflow: {x}^10 does not fit in s64")
        return result
