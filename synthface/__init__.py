"""synthface: balanced synthetic masked-face datasets and occlusion-robust face-attribute models."""

__version__ = "0.1.0"
