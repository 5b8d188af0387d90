"""Reports of what routing spends, saves and delivers: from a live sidecar (`modelroute report`) or a replay."""
