# depends on a migration that does not exist: Django cannot build the graph
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("broken", "0000_missing")]
    operations = []
