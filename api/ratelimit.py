"""Rate limits and the Open311 filing quota, counted with the ``limits`` library.

Four buckets, each a ``limits`` rate string (``"20/second;600/minute"``: every part applies):

| bucket | counted per | what it counts |
| --- | --- | --- |
| ``address`` | client address | every request |
| ``token`` | token id | every request with a valid token |
| ``failed_auth`` | client address | invalid or revoked credentials (then: 429 to all) |
| ``filing`` | client id | an Open311 client's filings, all its tokens (its quota) |

The counters live in ``storage`` (``memory://``: per process, the default; ``redis://host``
shares them between API processes). Behind a proxy the client address is what uvicorn's
``--forwarded-allow-ips`` lets through from ``X-Forwarded-For``; the proxy keeps its own
per-address limit too (``deploy/nginx``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from enum import StrEnum

from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter


class Bucket(StrEnum):
    ADDRESS = "address"
    TOKEN = "token"
    FAILED_AUTH = "failed_auth"
    FILING = "filing"


@dataclass(frozen=True)
class RatePolicy:
    """The limits of each bucket (``""``: that bucket is not limited). The defaults of a
    deployment are ``closeloop.settings``' (``CLOSELOOP_RATE_LIMIT_*``)."""

    address: str = ""
    token: str = ""
    failed_auth: str = ""
    filing: str = ""
    storage: str = "memory://"


class RateLimiter:
    """Counts hits per bucket and who; says how long to wait once a limit is spent."""

    def __init__(self, policy: RatePolicy) -> None:
        self.policy = policy
        rates = {bucket: str(getattr(policy, bucket.value)).strip() for bucket in Bucket}
        self._items: dict[Bucket, list[RateLimitItem]] = {
            bucket: parse_many(rate) if rate else [] for bucket, rate in rates.items()
        }
        self._limiter = SlidingWindowCounterRateLimiter(storage_from_string(self.policy.storage))

    def _wait(self, items: list[RateLimitItem], who: str) -> int:
        """Seconds until every spent item of ``items`` admits one more (at least 1)."""
        now = time.time()
        resets = [
            self._limiter.get_window_stats(item, item.namespace, who).reset_time
            for item in items
            if not self._limiter.test(item, item.namespace, who)
        ]
        return max(1, math.ceil(max(resets, default=now) - now))

    def hit(self, bucket: Bucket, who: str) -> int | None:
        """Count one hit; None if within the limits, else the seconds to wait (not counted)."""
        wait = self.spent(bucket, who)
        if wait is None:
            key = f"{bucket.value}:{who}"
            for item in self._items[bucket]:
                self._limiter.hit(item, item.namespace, key)
        return wait

    def spent(self, bucket: Bucket, who: str) -> int | None:
        """Without counting: None if one more hit fits, else the seconds to wait."""
        items = self._items[bucket]
        key = f"{bucket.value}:{who}"
        if all(self._limiter.test(item, item.namespace, key) for item in items):
            return None
        return self._wait(items, key)

    def reset(self) -> None:
        """Forget every count (tests, and an operator clearing a lock-out)."""
        self._limiter.storage.reset()
