"""An incremental, bounded parser of Server-Sent Events that keeps the ``data:`` payloads.

It reads a *copy* of the stream chunk by chunk (the response itself is never held back),
carries a line split across chunks over to the next chunk, accepts ``\\n``, ``\\r\\n`` and
``\\r`` line ends, and never keeps more than ``limit`` bytes of payload plus one carried
line (itself cut at ``limit``). Data lines of one event are joined with ``\\n`` (as a browser
does); the payloads of successive events are concatenated, so a token stream reads as text.
"""

from __future__ import annotations

__all__ = ["SSEDataParser", "ends_between_events", "format_sse_event"]

_LINE_ENDS = (b"\r\n", b"\n", b"\r")


def ends_between_events(tail: bytes) -> bool:
    """Whether a stream ending in ``tail`` (its last 4 bytes, or all of it when shorter)
    ends between events: empty, or its last line is blank.

    A browser drops an event that the stream left without its blank line; an event of ours
    appended after it would deliver it, so ours is added only at such a boundary.
    """
    if not tail:
        return True
    for end in _LINE_ENDS:
        if tail.endswith(end):
            rest = tail[: -len(end)]
            return not rest or rest.endswith((b"\n", b"\r"))
    return False


class SSEDataParser:
    """Collects the ``data:`` payloads of an event stream, up to ``limit`` bytes."""

    __slots__ = ("_carry", "_event_has_data", "_parts", "_skip_line", "events", "limit", "size",
                 "total", "truncated")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.total = 0
        self.events = 0
        self.truncated = False
        self._parts: list[bytes] = []
        self._carry = b""
        self._event_has_data = False
        self._skip_line = False

    def feed(self, chunk: bytes) -> None:
        """Parse one chunk of the stream (any split of it is fine)."""
        self.total += len(chunk)
        if self.size >= self.limit and self.truncated:
            return
        buffer = self._carry + chunk if self._carry else chunk
        lines = buffer.splitlines(keepends=True)
        last = lines[-1] if lines else b""
        # an unterminated last line, or one ending in "\r" that may be half of "\r\n"
        if last and (last[-1:] not in (b"\n", b"\r") or last.endswith(b"\r")):
            lines.pop()
            if len(last) > self.limit + 8:
                self._overlong(last)
                last = b""
            self._carry = bytes(last)
        else:
            self._carry = b""
        for line in lines:
            if self._skip_line:
                self._skip_line = False
                continue
            self._line(line.rstrip(b"\r\n"))

    def close(self) -> None:
        """Process a last line the stream left unterminated."""
        if self._carry and not self._skip_line:
            self._line(self._carry.rstrip(b"\r\n"))
        self._carry = b""

    def data(self) -> bytes:
        """The concatenated payloads seen so far."""
        return b"".join(self._parts)

    def _overlong(self, line: bytes) -> None:
        # a line longer than the limit: keep what fits of a data line, skip the rest of it
        if not self._skip_line and line.startswith(b"data:"):
            self._line(line)
        self._skip_line = True

    def _line(self, line: bytes) -> None:
        if not line:
            if self._event_has_data:
                self.events += 1
            self._event_has_data = False
            return
        if line[:1] == b":":
            return
        name, _, value = line.partition(b":")
        if name != b"data":
            return
        if value[:1] == b" ":
            value = value[1:]
        if self._event_has_data:
            self._append(b"\n")
        self._event_has_data = True
        self._append(value)

    def _append(self, value: bytes) -> None:
        room = self.limit - self.size
        if len(value) > room:
            self.truncated = True
            value = value[:room]
        if value:
            self._parts.append(value)
            self.size += len(value)


def format_sse_event(event: str, data: str) -> bytes:
    """One SSE event as bytes: ``event: <event>``, one ``data:`` line per line of ``data``."""
    lines = [f"event: {event}"] + [f"data: {line}" for line in data.split("\n")]
    return ("\n".join(lines) + "\n\n").encode()
