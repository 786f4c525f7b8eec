"""Layers beyond the SQLAlchemy built-ins (ORMs, query builders), one file each; registered in drivers/."""
