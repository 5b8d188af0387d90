"""The contract below the proxy: what the request pipeline and the features that plug into it share.

Features (spend control, batches, the quality monitor, feedback) depend on this package and never
on :mod:`modelroute.proxy`; the proxy depends on it too; one composition root
(:mod:`modelroute.cli.compose`) wires them together. It holds:

- :mod:`.errors`: the exceptions that carry an answer other than the model's (status, error object);
- :mod:`.http`: reading a request body and its headers, once, the same way everywhere;
- :mod:`.shapes`: the client APIs' field checks (the pipeline's codecs and batch lines use them);
- :mod:`.hooks`: the hook protocol (admit, skip, settled), the read-only request record hooks see,
  and the plan of which hooks a policy needs;
- :mod:`.features`: a feature (its hooks, its HTTP routes, start and stop) and the host it runs in.
"""
