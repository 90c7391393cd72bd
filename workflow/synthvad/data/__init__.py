"""Datasets: the embedded, seeded demo dataset (`synthvad.data.demo.generate_demo`)."""
