"""Feature extractors (Inception, ...) for distributional metrics, registered by name.

Third-party extractors register through the ``vtbench.extractors`` entry-point group.
"""

from vtbench.registry import Registry

EXTRACTORS: Registry[object] = Registry("extractors")

__all__ = ["EXTRACTORS"]
