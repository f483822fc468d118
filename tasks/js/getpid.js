// The `getpid` task in JavaScript: which engine ran this call
// (wasp:getpid/getpid).
import { engineId, taskId, tenant } from "wasp:task/identity@0.1.0";
import { log } from "wasp:task/log@0.1.0";

export const getpid = {
  getpid() {
    return engineId();
  },

  whoami() {
    const line = `engine ${engineId()} tenant ${tenant()} task ${taskId()}`;
    console.log(line);
    console.error("whoami on stderr");
    log("info", line);
    return line;
  },
};
