"""The router: a compiled policy's decision pipeline.

Order: a pinned model the client named is served as asked; otherwise labelling strategies annotate
the request, the routes are tried in order (first match wins; a strategy route may pass), and the
policy's default serves the rest. The chosen model's fallback chain is then filtered down to the
models able to serve the request (capabilities, context window).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from modelroute.policy import CompiledPolicy, Route
from modelroute.routing.decision import Decision, Skip
from modelroute.routing.experiments import Experiments
from modelroute.routing.request import RequestView
from modelroute.routing.rules import CompiledRoute, Verdict
from modelroute.routing.strategy import ModelClient, Strategy, strategy_class

#: The model name that asks the router to choose freely.
AUTO = "auto"


class UnknownModel(LookupError):
    """The client asked for a model that is neither ``auto`` nor in the registry."""


class Router:
    def __init__(self, policy: CompiledPolicy, client: ModelClient | None = None) -> None:
        self.policy = policy
        self.routes = [CompiledRoute(r, f"spec.routes[{i}]", policy.model_names) for i, r in enumerate(policy.routes)]
        self.strategies: dict[str, Strategy] = {
            name: strategy_class(str(cfg.get("type")), f"spec.strategies.{name}.type")(name, cfg, policy, client)
            for name, cfg in policy.strategies.items()
        }
        self._labelers = [s for s in self.strategies.values() if s.labels_requests]
        #: Only strategies call models while deciding (a classifier, an embedder): rules never do.
        self.calls_models = bool(self.strategies)
        self.experiments = Experiments.from_extensions(policy.extensions)

    async def decide(self, view: RequestView) -> Decision:
        policy = self.policy
        requested = view.requested_model
        if requested != AUTO:
            model = policy.resolve(requested)  # a registry name, an alias, or a model's upstream id
            if model is None:
                raise UnknownModel(requested)
            if policy.is_pinned(model) or policy.is_pinned(requested):
                return self._finish(view, "pinned", "pinned", model, None, "the client named a pinned model")
        for labeler in self._labelers:
            await labeler.label(view)
        for compiled in self.routes:
            if not compiled.matches(view):
                continue
            route = compiled.route
            if route.model is not None:
                return self._finish(view, route.name, "rules", route.model, route, "route matched")
            strategy = self.strategies[str(route.strategy)]
            choice = await strategy.choose(view)
            if choice.model is not None:
                decision = self._finish(view, route.name, strategy.type, choice.model, route, choice.reason, choice.annotations,
                                        chain=choice.chain)
                reviewer = None if "arm" in decision.annotations else choice.reviewer  # an arm replaced the cascade
                return dataclasses.replace(decision, reviewer=reviewer, cost_usd=view.decision_cost_usd)
        return self._finish(view, "default", "default", policy.default, None, "no route matched")

    def explain_routes(self, view: RequestView) -> list[Verdict]:
        """Why each route matched or not (no strategies run)."""
        return [compiled.explain(view) for compiled in self.routes]

    def _finish(
        self,
        view: RequestView,
        route_name: str,
        strategy: str,
        model: str,
        route: Route | None,
        reason: str,
        annotations: dict[str, Any] | None = None,
        chain: tuple[str, ...] | None = None,
    ) -> Decision:
        arm = self.experiments.assign(view, route_name) if self.experiments else None
        if arm is not None:  # an A/B experiment splits this route: the arm's model (and its chain) serves it
            model, chain = arm.model, None
            annotations = {**(annotations or {}), "experiment": arm.experiment, "arm": arm.arm}
        candidates, skipped = self.eligible(view, chain or self.policy.chain(model, route))
        if view.labels:
            annotations = {**view.labels, **(annotations or {})}
        return Decision(route_name, strategy, candidates, reason, skipped, annotations or {}, cost_usd=view.decision_cost_usd)

    def eligible(self, view: RequestView, chain: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[Skip, ...]]:
        """The models of ``chain`` able to serve ``view``, and why the others were left out."""
        keep: list[str] = []
        skipped: list[Skip] = []
        for name in chain:
            why = self.unfit(view, name)
            if why is None:
                keep.append(name)
            else:
                skipped.append(Skip(name, why))
        return tuple(keep), tuple(skipped)

    def unfit(self, view: RequestView, name: str) -> str | None:
        model = self.policy.models[name]
        if view.native_only and view.api not in self.policy.providers[model.provider].apis:
            return view.native_only
        if view.tool_count and not model.supports("tools"):
            return "no tools capability"
        if view.response_format != "text" and not model.supports("json"):
            return "no json capability"
        if view.has_images and not model.supports("vision"):
            return "no vision capability"
        window = model.context_window
        if window is not None and view.input_tokens > window:
            return f"context window {window} < {view.input_tokens} input tokens"
        return None

    async def aclose(self) -> None:
        for strategy in self.strategies.values():
            await strategy.aclose()
