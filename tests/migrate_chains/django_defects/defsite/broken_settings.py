# the broken app alone: Django builds one graph for every installed app, so it would hide the other defects
SECRET_KEY = "dbmatrix-defects-not-secret"
INSTALLED_APPS = ["broken"]
