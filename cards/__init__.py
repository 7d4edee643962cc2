"""Dataset and model cards, statistics, plots, the trajectory viewer and Hub publishing.

``stats`` recounts from the shards, ``plots`` draws PNGs, ``card`` writes README.md, ``viewer`` writes a
self-contained HTML page, ``publish`` plans/uploads/verifies, ``cli`` holds the command functions.
"""
