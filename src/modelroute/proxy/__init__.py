"""The sidecar proxy: an aiohttp app that routes OpenAI-format requests by the active policy.

Public API: :func:`build_app`, :class:`PolicyHolder` (atomic policy swaps), :class:`Settings`,
:class:`PolicyFileWatcher` and :func:`load_policy_file` (file mode).
"""

from __future__ import annotations

from modelroute.proxy.app import Background, build_app
from modelroute.proxy.reload import PolicyFileWatcher, load_policy_file
from modelroute.proxy.state import SERVICES, PolicyHolder, Runtime, Services, Settings

__all__ = ["SERVICES", "Background", "PolicyFileWatcher", "PolicyHolder", "Runtime", "Services", "Settings", "build_app", "load_policy_file"]
