"""The Kubernetes control plane: RoutingPolicy CRD, kopf operator, policy distribution, injection.

The only package that imports kopf (and talks to the Kubernetes API). Submodules import kopf
lazily where they need it, so :mod:`modelroute.operator.crd` works without the ``operator`` extra.
"""
