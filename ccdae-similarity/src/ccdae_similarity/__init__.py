"""ccdae-similarity: conceptual similarity by complexity-constrained descriptive auto-encoding."""

__version__ = "0.1.0"
