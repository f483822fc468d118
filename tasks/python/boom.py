"""The `boom` task in Python: fails on request (wasp:boom/boom)."""

from wit_world import exports


class Boom(exports.Boom):
    def boom(self, message: str) -> str:
        raise ValueError(f"boom: {message}")

    def echo(self, message: str) -> str:
        return message
