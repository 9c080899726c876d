"""Evaluation: SyncNet-style lip-sync expert, face-parameter regressor, identity encoder, metrics, reports."""
