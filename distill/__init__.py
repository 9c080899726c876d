"""Distillation of the FADA-style teacher into fast students, and the corpus it trains on."""
