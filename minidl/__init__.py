"""minidl: a small, fast, honest deep-learning framework with swappable backends."""

__version__ = "0.1.0"
