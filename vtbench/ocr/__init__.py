"""OCR engines for text-preservation metrics, registered by name.

Third-party engines register through the ``vtbench.ocr`` entry-point group.
"""

from vtbench.registry import Registry

OCR_ENGINES: Registry[object] = Registry("ocr")

__all__ = ["OCR_ENGINES"]
