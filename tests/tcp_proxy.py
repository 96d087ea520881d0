"""A TCP proxy on loopback that a test can cut, silence and restore, to simulate outages."""

from __future__ import annotations

import asyncio
import contextlib


class TcpProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target_host:target_port`` until :meth:`cut`.

    ``cut()`` closes every open connection and refuses new ones (they are accepted and
    closed at once). ``silence()`` is a server that accepts and never answers: new
    connections are accepted and held, nothing forwarded; open connections stay open but
    every byte either way is swallowed (a warm pool whose server went silent).
    ``restore()`` lets traffic through again: open connections forward once more (what
    was swallowed is lost, as a client that gave up on them expects) and the connections
    held while silent are closed.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.port = 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._held: set[asyncio.StreamWriter] = set()
        self._cut = False
        self._silent = False
        self._closed = False
        self._handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> TcpProxy:
        """Listen on a free loopback port (see :attr:`port`)."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65_536):
                if self._silent:
                    continue
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        server_w: asyncio.StreamWriter | None = None
        try:
            if self._cut or self._closed:
                return
            if self._silent:
                await self._hold(client_r, client_w)
                return
            try:
                server_r, server_w = await asyncio.open_connection(
                    self.target_host, self.target_port)
            except OSError:
                return
            if self._cut or self._closed:  # cut while connecting: drop this one too
                return
            self.connections += 1
            self._open.update((client_w, server_w))
            await asyncio.gather(self._pipe(client_r, server_w), self._pipe(server_r, client_w))
        finally:
            # every socket of this connection is closed when the handler ends, cancelled
            # by close() included: none is left for the garbage collector to find open
            for writer in (client_w, server_w):
                if writer is not None:
                    self._open.discard(writer)
                    with contextlib.suppress(Exception):
                        writer.transport.abort()
            if task is not None:
                self._handlers.discard(task)

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._held.add(writer)
        try:
            while await reader.read(65_536):
                pass
        except (ConnectionError, OSError):
            pass
        finally:
            self._held.discard(writer)
            writer.close()

    def silence(self) -> None:
        """Accept and hold new connections; swallow every byte on the open ones."""
        self._silent = True

    def cut(self) -> None:
        """Drop every connection and refuse new ones."""
        self._cut = True
        for writer in list(self._open):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self._open.clear()

    def restore(self) -> None:
        """Let traffic through again (after :meth:`cut` or :meth:`silence`)."""
        self._cut = False
        self._silent = False
        self._closed = False
        self._handlers: set[asyncio.Task[None]] = set()
        self._drop_held()

    def _drop_held(self) -> None:
        for writer in list(self._held):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self._held.clear()

    async def close(self) -> None:
        """Stop listening, drop every connection and end every handler (so no socket,
        to the target or the client, outlives the proxy)."""
        self._closed = True
        self.cut()
        self._drop_held()
        if self._server is not None:
            self._server.close()
        handlers = list(self._handlers)
        for handler in handlers:
            handler.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
