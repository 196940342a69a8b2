"""What ``rayexp report`` writes: a run's tables and figures (``run``), the thesis' tables (``tables``), and
intervals over seed runs (``seeds``, with rliable's statistics in ``stats``)."""
