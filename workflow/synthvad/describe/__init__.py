"""Stage 1: paired abnormal/normal scene descriptions from four element pools (GV-VAD II-A)."""
