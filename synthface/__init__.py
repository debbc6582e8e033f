"""synthface: balanced synthetic masked-face datasets and occlusion-robust face-attribute models."""

__version__ = "0.1.0"

import os as _os

# albumentations asks PyPI for a newer version at import; synthface runs offline and must not wait on that.
_os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
