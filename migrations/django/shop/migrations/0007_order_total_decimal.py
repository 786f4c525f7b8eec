# a column type change: integer -> numeric(12, 2) rewrites the table on PostgreSQL and MariaDB
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0006_note_large_orders")]
    operations = [
        migrations.AlterField(model_name="order", name="total",
                              field=models.DecimalField(decimal_places=2, max_digits=12)),
    ]
