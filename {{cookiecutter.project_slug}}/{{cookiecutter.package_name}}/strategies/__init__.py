"""Aggregation strategies of the federated run."""
