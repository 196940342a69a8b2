"""RLlib's offline baselines on rayexp's datasets: CQL / IQL (``offline``) and discrete CQL (``cql_discrete``)."""
