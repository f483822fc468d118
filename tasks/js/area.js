// The `area` task in JavaScript: the area of a rectangle (wasp:area/area).
// s64 values arrive and leave as BigInt.
import { log } from "wasp:task/log@0.1.0";

const S64_MIN = -(2n ** 63n);
const S64_MAX = 2n ** 63n - 1n;

export const area = {
  area(w, h) {
    // componentize-js 0.23 passes an s64 argument as its unsigned bits (and
    // aborts on a negative s64 result: README, "Tasks in other languages").
    w = BigInt.asIntN(64, w);
    h = BigInt.asIntN(64, h);
    log("debug", `area of ${w} x ${h}`);
    const result = w * h;
    if (result < S64_MIN || result > S64_MAX) {
      // An uncaught exception traps the call; its message reaches the error.
      throw new RangeError(`area overflow: ${w} * ${h} does not fit in s64`);
    }
    return result;
  },
};
