# a settings module that reaches the application's own database on import: dbmatrix must refuse it
import psycopg

SECRET_KEY = "x"
INSTALLED_APPS = ["drift"]
_conn = psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
_conn.execute("CREATE TABLE IF NOT EXISTS dbmatrix_sentinel_django (x int)")
