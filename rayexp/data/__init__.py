"""Datasets: the episode store every stage reads (``store``), D4RL and Minari files in and out (``d4rl``,
``minari``), and the training windows cut from it (``windows``)."""
