"""rl-hvae: hierarchical VAE trained with reinforcement learning (An, Li et al., CVPR 2024)."""

__version__ = "0.1.0"
