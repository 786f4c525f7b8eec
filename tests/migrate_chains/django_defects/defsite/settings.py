SECRET_KEY = "dbmatrix-defects-not-secret"
INSTALLED_APPS = ["conflict", "drift", "badreverse", "halfway"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
