"""Local embeddings and nearest-neighbour search for the embedding router.

``minilm``: all-MiniLM-L6-v2 without torch (ONNX Runtime or numpy); ``text``: what of a request to
embed; ``knn``: exact and IVF cosine search; ``library``: the labelled example file. numpy and the
model libraries are imported by those modules, never by this package's ``__init__``.
"""
