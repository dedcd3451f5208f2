"""Admin HTTP service of the gate: quarantine review, breaker control, thresholds."""
