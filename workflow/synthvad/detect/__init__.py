"""Weakly supervised anomaly detectors trained on segment features."""
