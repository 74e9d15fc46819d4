"""alpha-invariance: scale-robust volume density for radiance fields (Ahn, Wang et al., CVPR 2024)."""

__version__ = "0.1.0"
