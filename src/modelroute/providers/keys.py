"""Provider keys from the environment or from files (mounted Secrets), re-read when a file changes."""

from __future__ import annotations

import os
import time
from typing import Mapping

from modelroute.policy import ProviderSpec
from modelroute.providers.base import KeySource

#: Seconds between checks of a key file for a change (a rotated Secret).
FILE_CHECK_INTERVAL = 1.0


class EnvFileKeys(KeySource):
    """Keys from ``{env: NAME}`` or ``{file: PATH}``.

    ``secretKeyRef`` keys are files too: in a cluster the sidecar mounts each referenced Secret under
    ``secrets_dir/<name>/<key>``.
    """

    def __init__(self, environ: Mapping[str, str] | None = None, secrets_dir: str = "/var/run/modelroute/secrets") -> None:
        self._environ = environ if environ is not None else os.environ
        self._secrets_dir = secrets_dir
        self._files: dict[str, tuple[float, float, str | None]] = {}  # path -> (checked at, mtime, key)

    def get(self, provider: ProviderSpec) -> str | None:
        ref = provider.api_key
        if ref is None:
            return None
        if ref.env:
            return self._environ.get(ref.env) or None
        if ref.file:
            return self._read(ref.file)
        if ref.secret_name and ref.secret_key:
            return self._read(os.path.join(self._secrets_dir, ref.secret_name, ref.secret_key))
        return None

    def _read(self, path: str) -> str | None:
        now = time.monotonic()
        cached = self._files.get(path)
        if cached and now - cached[0] < FILE_CHECK_INTERVAL:
            return cached[2]
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            self._files[path] = (now, 0.0, None)
            return None
        if cached and cached[1] == mtime:
            self._files[path] = (now, mtime, cached[2])
            return cached[2]
        try:
            with open(path, encoding="utf-8") as fh:
                key = fh.read().strip() or None
        except OSError:
            key = None
        self._files[path] = (now, mtime, key)
        return key
