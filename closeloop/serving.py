"""How ``closeloop api`` runs uvicorn: its timeouts, and a log line for each connection
that ends abnormally (uvicorn itself logs nothing when a connection is reset or dropped).

Keep-alive: the side that closes an idle HTTP/1.1 connection races the other side
reusing it. When the server closes first, a client's request can reach a socket the
server is closing, and the client sees a reset (``httpx.ReadError``) while the server
logs nothing (issue 22: uvicorn's default of 5 s equals httpx's pool expiry of 5 s).
So the server keeps idle connections *longer* than every client's pool and proxy's
upstream keep-alive (``CLOSELOOP_API_KEEP_ALIVE``, 75 s; nginx's upstream default is
60 s): the client always closes first, and a client never sends on a connection the
server has given up. The remaining resets (a peer restarting, a network dropping a
connection) are made harmless by clients retrying with the same ``Idempotency-Key``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog
from uvicorn.protocols.http.h11_impl import H11Protocol

if TYPE_CHECKING:
    from closeloop.settings import Settings

log = structlog.get_logger("closeloop.http")


class LoggedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, plus one warning per abnormal end of a connection.

    Abnormal: the peer reset it (``error``), or closed it before the response to a
    request it had sent was complete (the client gave up or its proxy timed out; the
    command may still have been recorded, which is why clients retry with the same key).
    Idle connections closed by the keep-alive timer are logged at debug.
    """

    def connection_lost(self, exc: Exception | None) -> None:
        cycle = self.cycle
        unanswered = cycle is not None and not cycle.response_complete
        if exc is not None or unanswered:
            scope = cycle.scope if cycle is not None else {}
            log.warning(
                "connection-lost",
                client=_peer(self.client),
                error=repr(exc) if exc is not None else None,
                during_request=unanswered,
                response_started=bool(cycle is not None and cycle.response_started),
                method=scope.get("method"),
                path=scope.get("path"),
            )
        super().connection_lost(exc)

    def timeout_keep_alive_handler(self) -> None:
        if not self.transport.is_closing():
            log.debug("keep-alive-expired", client=_peer(self.client))
        super().timeout_keep_alive_handler()


def _peer(client: tuple[str, int] | None) -> str | None:
    return f"{client[0]}:{client[1]}" if client else None


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments ``closeloop api`` gives ``uvicorn.run`` (besides host and port)."""
    return {
        "http": LoggedH11Protocol,
        "timeout_keep_alive": settings.api_keep_alive,
        # SIGTERM: stop accepting, close idle connections, give in-flight requests this
        # long, then close them (below the supervisor's 10 s, compose's 10 s and the
        # 25 s k8s leaves after the preStop sleep).
        "timeout_graceful_shutdown": settings.api_graceful_timeout,
        "log_config": None,
        "access_log": False,
        "proxy_headers": True,
    }
