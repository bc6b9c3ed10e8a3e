"""segbench: re-run published segmentation-loss studies end to end."""

__version__ = "0.1.0"
