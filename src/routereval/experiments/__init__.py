"""Experiments over the evaluation grid: sweeps, the scaling-up study."""
