"""lpsr: the library behind lpsr-bench (data, models, losses, metrics, OCR, training).

Importing it has no side effects and pulls in nothing heavy beyond what a submodule needs.
"""
__version__ = "0.1.0"
