"""The trace context of the command being handled, as a W3C ``traceparent`` string.

The outermost layer (the API's tracing middleware) sets it while a request runs; every
event the command records stores it as ``trace``, so the relay can continue that trace
when it signals the grievance's workflow. The domain only carries the string: it never
reads, creates or checks traces (no tracing library here).
"""

from __future__ import annotations

from contextvars import ContextVar

CURRENT_TRACE: ContextVar[str | None] = ContextVar("closeloop_current_trace", default=None)
