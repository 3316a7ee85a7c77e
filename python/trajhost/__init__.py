"""trajhost's models in PyTorch: the four backbones, the heads, the data rules, and runs
exported by `trajhost export` (see the repository's README, "PyTorch")."""

from .backbones import build_backbone
from .data import CLASSES, Split, standardise
from .exported import evaluate, load
from .heads import Heads, UnifiedModel

__all__ = ["CLASSES", "Heads", "Split", "UnifiedModel", "build_backbone", "evaluate", "load", "standardise"]
