"""The model-based loop (short orchestration) on a run-directory object, and its settings checks."""
