"""A small TCP proxy for fault tests: pass, stall, reset or black-hole traffic.

It can also lose one reply: :meth:`FaultProxy.drop_reply` lets the next
command of a given name through, then swallows the server's answer and
resets that connection, as a failover does between a write and its
acknowledgement.
"""

from __future__ import annotations

import select
import socket
import struct
import threading

_HEADER = struct.Struct("<iiii")  # messageLength, requestID, responseTo, opCode
_OP_MSG = 2013


def command_name(message: bytes) -> str | None:
    """The command name of a wire-protocol ``OP_MSG``, else ``None``.

    The name is the first key of the body (the section of kind 0).
    """
    if len(message) < _HEADER.size + 5 or _HEADER.unpack_from(message)[3] != _OP_MSG:
        return None
    at = _HEADER.size + 4  # after flagBits
    while at < len(message):
        kind, at = message[at], at + 1
        if kind == 0:  # one BSON document: int32 size, then (type, cstring name, value) ...
            start = at + 5
            end = message.find(b"\0", start)
            return message[start:end].decode() if end > start else None
        if kind != 1:
            return None
        at += struct.unpack_from("<i", message, at)[0]  # a document sequence: skip it
    return None


class _Direction:
    """One direction of one proxied connection: bytes not yet forwarded."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.framed = True  # False once bytes were dropped: boundaries are lost

    def messages(self, data: bytes) -> list[bytes]:
        """Whole wire-protocol messages completed by ``data``; the rest stays buffered."""
        if not self.framed:
            return [data]
        self.buffer += data
        done = []
        while len(self.buffer) >= 4:
            size = struct.unpack_from("<i", self.buffer)[0]
            if size < _HEADER.size:  # not a message start: forward as it comes from now on
                self.framed = False
                done.append(bytes(self.buffer))
                self.buffer.clear()
                break
            if len(self.buffer) < size:
                break
            done.append(bytes(self.buffer[:size]))
            del self.buffer[:size]
        return done


class FaultProxy:
    """Forwards 127.0.0.1:<port> to a server, with a switchable fault mode.

    Modes: ``"pass"`` forwards; ``"stall"`` holds every byte; ``"blackhole"``
    reads and drops every byte; ``"reset"`` closes connections with a TCP
    reset. In ``"pass"`` mode whole wire-protocol messages are forwarded,
    so that :meth:`drop_reply` can pick one out. Runs in daemon threads
    until :meth:`close`.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.mode = "pass"
        #: The names of the commands whose reply was dropped, in order.
        self.dropped: list[str] = []
        self._armed: str | None = None
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._closed = False
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        if mode == "reset":
            with self._lock:
                for sock in list(self._sockets):
                    self._reset(sock)

    def drop_reply(self, command: str) -> None:
        """Lose the reply of the next ``command`` (``"update"``, ``"findAndModify"`` ...).

        The command reaches the server, which runs it and answers; the
        answer is dropped and the connection reset, so the client sees a
        network error for a command that took effect. Later commands pass.
        :attr:`dropped` records each reply dropped.
        """
        with self._lock:
            self._armed = command

    def _claim(self, message: bytes) -> bool:
        """Whether ``message`` is the command whose reply is to be dropped (once)."""
        if self._armed is None:
            return False
        with self._lock:
            if self._armed is None or command_name(message) != self._armed:
                return False
            self._armed = None
            return True

    def _reset(self, sock: socket.socket) -> None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        except OSError:
            pass

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.mode == "reset":
                self._reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                self._reset(client)
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        peers = {client: upstream, upstream: client}
        directions = {client: _Direction(), upstream: _Direction()}
        lost: dict[int, str] = {}  # requestID -> name of a command whose reply is dropped
        close = self._close
        try:
            while not self._closed:
                if self.mode == "stall":
                    threading.Event().wait(0.05)
                    continue
                readable, _, _ = select.select(list(peers), [], [], 0.05)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if self.mode != "pass":
                        directions[sock].framed = False
                        continue
                    for message in directions[sock].messages(data):
                        if sock is client and self._claim(message):
                            lost[_HEADER.unpack_from(message)[1]] = command_name(message) or ""
                        elif sock is upstream and lost and len(message) >= _HEADER.size:
                            name = lost.pop(_HEADER.unpack_from(message)[2], None)
                            if name is not None:
                                self.dropped.append(name)
                                close = self._reset
                                return
                        peers[sock].sendall(message)
        except OSError:
            return
        finally:
            for sock in (client, upstream):
                with self._lock:
                    self._sockets.discard(sock)
                close(sock)

    @staticmethod
    def _close(sock: socket.socket) -> None:
        try:
            sock.close()
        except OSError:
            pass

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        with self._lock:
            for sock in list(self._sockets):
                self._reset(sock)
