"""facetalk: audio-driven motion diffusion over NPHM expression codes (Aneja et al., CVPR 2024)."""

__version__ = "0.1.0"
