"""synthvad: synthetic training data for video anomaly detection."""

__version__ = "0.1.0"
