"""CLAP: Collaborative Learning of Anomalies with Privacy (CVPR 2024, arXiv 2404.00847)."""

__version__ = "0.1.0"
