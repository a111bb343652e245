"""Sliding-window limits kept in the cache (shared by every web process when CACHE_URL is Redis).

A fixed window lets a client spend its whole allowance just before a boundary and again just after
(seen: 20 key submissions in 4.6 s against a limit of 10 per 10 minutes). Here the count is the current
window's plus the previous window's weighted by how much of it still overlaps the last `window` seconds
(the "sliding window counter"): two atomic counters per name, no list of timestamps, and a burst at a
boundary still counts in full.

    limit = SlidingWindow("login-user", limit=5, window=900)
    limit.check(key)        # raises Limited(retry_after) when the allowance is spent
    limit.hit(key)          # count one attempt
    limit.clear(key)
"""

import hashlib
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache


class Limited(Exception):
    def __init__(self, retry_after: int):
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after

    @property
    def wait(self) -> str:
        """ "3 minutes", "40 seconds": for messages to people."""
        if self.retry_after >= 90:
            minutes = math.ceil(self.retry_after / 60)
            return f"{minutes} minutes"
        return f"{max(self.retry_after, 1)} seconds"


@dataclass(frozen=True)
class SlidingWindow:
    name: str
    limit: int
    window: int  # seconds

    def _keys(self, key: str, now: float) -> tuple[str, str, float]:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        index, elapsed = divmod(now, self.window)
        return f"rl:{self.name}:{digest}:{int(index)}", f"rl:{self.name}:{digest}:{int(index) - 1}", elapsed

    def check(self, key: str, now: float | None = None) -> None:
        """Raise Limited when one more attempt would go over the limit."""
        now = time.time() if now is None else now
        current, previous, elapsed = self._keys(key, now)
        counts = cache.get_many([current, previous])
        cur, prev = counts.get(current, 0), counts.get(previous, 0)
        if prev * (1 - elapsed / self.window) + cur + 1 <= self.limit:
            return
        if cur + 1 <= self.limit:  # the previous window's weight has to fade enough, within this window
            retry = self.window * (1 - (self.limit - cur - 1) / prev) - elapsed
        else:  # into the next window, where this window's count is the fading one
            retry = (self.window - elapsed) + self.window * (1 - (self.limit - 1) / cur)
        raise Limited(max(1, math.ceil(retry)))

    def hit(self, key: str, now: float | None = None) -> None:
        current, _, _ = self._keys(key, time.time() if now is None else now)
        cache.add(current, 0, 2 * self.window + 60)  # kept while it can still weigh on the next window
        try:
            cache.incr(current)
        except ValueError:  # evicted between add and incr
            cache.set(current, 1, 2 * self.window + 60)

    def clear(self, key: str, now: float | None = None) -> None:
        current, previous, _ = self._keys(key, time.time() if now is None else now)
        cache.delete_many([current, previous])


def client_address(request) -> str:
    """The client's address: REMOTE_ADDR, or behind TRUSTED_PROXY_HOPS proxies the address the outermost
    trusted proxy saw (X-Forwarded-For read from the right, so a client cannot forge its own entry)."""
    hops = settings.TRUSTED_PROXY_HOPS
    if hops:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= hops:
            return forwarded[-hops][:64]
    return request.META.get("REMOTE_ADDR", "")[:64]
