"""Settings of the reference Django project. Its DATABASES are never used by dbmatrix: every run replaces them
with the target's scratch database."""

SECRET_KEY = "dbmatrix-reference-not-secret"
INSTALLED_APPS = ["django.contrib.contenttypes", "shop"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "reference.sqlite3"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
