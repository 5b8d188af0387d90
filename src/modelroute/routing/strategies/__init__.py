"""The adaptive strategies: classifier, cascade, embedding and split routing.

Each registers its type name in :data:`modelroute.routing.strategy.REGISTRY`; the module behind a
type (and its heavy imports: numpy, ONNX Runtime, tokenizers) is imported only when a policy
uses it.
"""

from __future__ import annotations

from modelroute.routing.strategy import register

register("classifier", "modelroute.routing.strategies.classifier:ClassifierStrategy")
register("cascade", "modelroute.routing.strategies.cascade:CascadeStrategy")
register("embedding", "modelroute.routing.strategies.embedding:EmbeddingStrategy")
register("split", "modelroute.routing.strategies.split:SplitStrategy")
