"""``rayexp sweep``: the typed sweep file (``config``), the Ray Tune run of trials (``run``), the scores a trial
reports (``scores``) and the sweep report (``results``)."""
