"""pathdino: PathDino, HistoRotate and FPS (Alfasly et al., CVPR 2024)."""

__version__ = "0.1.0"
