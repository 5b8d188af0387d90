"""Calibration: build an embedding router from a labelled dataset and check it on held-out prompts.

``data`` reads the routerbench-format JSON lines (each prompt with every model's correctness,
cost and answer); ``plans`` lists what a region may be served by (one model, or an agreement
cascade with one or two checkers) and what each would have scored and cost on every prompt;
``fit`` cuts the embedding space into regions and buys quality region by region, cheapest first,
until the target is kept (the region bought last split between two plans), with cross-fitting
against optimism; ``report`` compares the router with the
baseline and the best single model on the held-out split; ``policy`` writes the RoutingPolicy and
its example library. ``modelroute calibrate`` (cli/calibrate.py) drives it.
"""
