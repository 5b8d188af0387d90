"""Policy from a file, watched: a valid new version applies atomically, an invalid one is rejected.

The file is polled (stat every ``interval`` seconds, then a content hash), which also follows the
symlink swaps of a Kubernetes ConfigMap volume. A rejected version is logged with every problem and
counted in ``modelroute_policy_reloads{result="rejected"}``; the last good policy stays.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from typing import AsyncIterator

from aiohttp import web

from modelroute.policy import CompiledPolicy, PolicyError, compile_text
from modelroute.proxy.state import SERVICES, running

log = logging.getLogger("modelroute.reload")


def load_policy_file(path: str) -> CompiledPolicy:
    """Read and compile a policy file; relative paths in it resolve against its folder."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise PolicyError([(path, f"cannot read: {exc.strerror}")]) from None
    return compile_text(text, base_dir=os.path.dirname(os.path.abspath(path)))


class PolicyFileWatcher:
    def __init__(self, path: str, interval: float = 1.0) -> None:
        self.path = path
        self.interval = interval
        self._stat: tuple[float, int, int] | None = None
        self._digest: str | None = None

    def _changed(self) -> bool:
        try:
            st = os.stat(self.path)
        except OSError:
            return False
        key = (st.st_mtime, st.st_size, st.st_ino)
        if key == self._stat:
            return False
        self._stat = key
        with open(self.path, "rb") as fh:
            digest = hashlib.sha256(fh.read()).hexdigest()
        if digest == self._digest:
            return False
        self._digest = digest
        return True

    def check(self, app: web.Application) -> str:
        """Load the file if it changed: 'applied', 'rejected', 'unchanged'."""
        if not self._changed():
            return "unchanged"
        services = app[SERVICES]
        try:
            policy = load_policy_file(self.path)
            applied = services.holder.apply(policy)
        except PolicyError as exc:
            services.metrics.reloads.labels("rejected").inc()
            log.error("policy %s rejected, keeping version %s: %s", self.path,
                      services.holder.policy.version if services.holder.policy else "none", exc)
            return "rejected"
        if applied:
            services.metrics.reloads.labels("applied").inc()
            log.info("policy %s version %s applied", policy.name, policy.version)
            return "applied"
        return "unchanged"

    async def ctx(self, app: web.Application) -> AsyncIterator[None]:
        """cleanup_ctx: prime with the file's current state, then poll it."""
        self._changed()
        async with running(self._run(app)):
            yield

    async def _run(self, app: web.Application) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.check(app)
            except Exception:  # a watcher that dies would silently freeze the policy
                log.exception("policy watch failed")
