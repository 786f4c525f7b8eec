"""Layers other than SQLAlchemy's, one module each, registered in ``drivers.BUILTIN_LAYERS``."""
