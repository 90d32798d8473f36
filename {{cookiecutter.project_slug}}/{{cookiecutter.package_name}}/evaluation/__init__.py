"""Evaluation as the leaderboard scores it: one module per challenge over one shared engine."""
