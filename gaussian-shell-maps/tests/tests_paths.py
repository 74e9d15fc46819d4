import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(ROOT, "configs", "tiny.toml")
PAPER = os.path.join(ROOT, "configs", "paper.toml")
