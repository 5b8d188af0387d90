"""Split routing: a fixed share of requests to each target, the same prompt always the same way.

```yaml
winogrande-mix:
  type: split
  targets:
    - {strategy: cascade-yi, share: 0.41}      # another strategy (not a split or embedding router)
    - {model: gpt-4-1106-preview, share: 0.59} # or a registry model
```

The request's prompt (the last user message) is hashed (BLAKE2b) to a point in [0, 1), and the
target whose share covers that point serves it. So a prompt is served the same way on every
retry and replay, and over many prompts each target gets its share. This is how a calibrated
policy spends exactly its budget: a region whose cheapest plan misses the quality target and whose
next plan overshoots it serves a share of its prompts with each (see
:mod:`modelroute.calibrate.fit`). Shares must be positive and add up to 1.
"""

from __future__ import annotations

import hashlib
from typing import Any, Mapping

from modelroute.policy import CompiledPolicy
from modelroute.routing.request import RequestView
from modelroute.routing.strategies._config import Config
from modelroute.routing.strategy import Choice, ModelClient, Strategy

_FIELDS = ("targets",)
_NOT_NESTED = ("split", "embedding")


def bucket(text: str) -> float:
    """Where ``text`` falls in [0, 1): the first 8 bytes of its BLAKE2b digest."""
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def pick(shares: tuple[float, ...], point: float) -> int:
    """Index of the share that covers ``point`` (shares in order, adding up to 1)."""
    edge = 0.0
    for i, share in enumerate(shares):
        edge += share
        if point < edge:
            return i
    return len(shares) - 1


class SplitStrategy(Strategy):
    type = "split"

    def __init__(self, name: str, config: Mapping[str, Any], policy: CompiledPolicy, client: ModelClient | None) -> None:
        super().__init__(name, config, policy, client)
        cfg = Config(name, config, policy, _FIELDS)
        self.targets: list[str | Strategy] = []
        shares: list[float] = []
        raw = config.get("targets")
        if not isinstance(raw, list) or len(raw) < 2:
            cfg.fail("must be a list of at least two {model|strategy, share} entries", "targets")
            raw = []
        for i, entry in enumerate(raw):
            target = self._target(cfg, i, entry)
            share = cfg.number("share", 0.0, lo=0.0, hi=1.0, block=entry, at=("targets", i)) if isinstance(entry, Mapping) else 0.0
            if target is not None:
                if share <= 0.0:
                    cfg.fail("must be above 0", "targets", i, "share")
                self.targets.append(target)
                shares.append(share)
        if shares and abs(sum(shares) - 1.0) > 1e-6:
            cfg.fail(f"shares add up to {sum(shares):g}, not 1", "targets")
        self.shares = tuple(shares)
        cfg.check()

    def _target(self, cfg: Config, i: int, entry: Any) -> str | Strategy | None:
        if not isinstance(entry, Mapping) or len(set(entry) & {"model", "strategy"}) != 1 or set(entry) - {"model", "strategy", "share"}:
            cfg.fail("must be {model: <registry model>, share} or {strategy: <name>, share}", "targets", i)
            return None
        if "model" in entry:
            model = entry["model"]
            if not isinstance(model, str) or model not in cfg.policy.models:
                cfg.fail(f"unknown model {model!r}", "targets", i, "model")
                return None
            return model
        return cfg.strategy(entry["strategy"], self.client, _NOT_NESTED, "targets", i, "strategy")

    async def choose(self, view: RequestView) -> Choice:
        point = bucket(view.prompt_text())
        index = pick(self.shares, point)
        target = self.targets[index]
        notes: dict[str, Any] = {"split": {"strategy": self.name, "target": index, "point": round(point, 4)}}
        if isinstance(target, Strategy):
            choice = await target.choose(view)
            return Choice(choice.model, f"split {self.name} -> {target.name}: {choice.reason}",
                          {**notes, **choice.annotations}, chain=choice.chain, reviewer=choice.reviewer)
        return Choice(target, f"split {self.name} -> {target}", notes)

    async def aclose(self) -> None:
        for target in self.targets:
            if isinstance(target, Strategy):
                await target.aclose()
