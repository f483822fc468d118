// The `boom` task in JavaScript: fails on request (wasp:boom/boom).

export const boom = {
  boom(message) {
    throw new Error(`boom: ${message}`);
  },

  echo(message) {
    return message;
  },
};
