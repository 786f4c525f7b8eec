"""Layers other than SQLAlchemy's (ORMs, query builders), one module each, registered in ``drivers.BUILTIN_LAYERS``."""
