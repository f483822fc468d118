// The `pow10` task in JavaScript: x^10 (wasp:pow10/pow10).
// s64 values arrive and leave as BigInt.

const S64_MIN = -(2n ** 63n);
const S64_MAX = 2n ** 63n - 1n;

export const pow10 = {
  pow10(x) {
    // componentize-js 0.23 passes an s64 argument as its unsigned bits (and
    // aborts on a negative s64 result: README, "Tasks in other languages").
    x = BigInt.asIntN(64, x);
    const result = x ** 10n;
    if (result < S64_MIN || result > S64_MAX) {
      // An uncaught exception traps the call; its message reaches the error.
      throw new RangeError(`pow10 overflow: ${x}^10 does not fit in s64`);
    }
    return result;
  },
};
