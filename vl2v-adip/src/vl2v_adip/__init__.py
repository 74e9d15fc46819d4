"""vl2v-adip: Align, Distill, Predict from a vision-language teacher (Addepalli et al., CVPR 2024)."""

__version__ = "0.1.0"
