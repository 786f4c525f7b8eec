# a NOT NULL column with a default on a large table (PostgreSQL 11+ and MariaDB 10.3+ add it without a rewrite)
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]
    operations = [
        migrations.AddField(model_name="customer", name="status",
                            field=models.CharField(default="active", max_length=20)),
    ]
