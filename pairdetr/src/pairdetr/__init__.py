"""pairdetr: joint detection and association of human bodies and faces (PairDETR, CVPR 2024)."""

__version__ = "0.1.0"
