"""eye-radiance: radiance fields from cornea reflections (Alzayer, Zhang et al., CVPR 2024)."""

__version__ = "0.1.0"
