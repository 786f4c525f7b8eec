# an index built without blocking writes: CREATE INDEX CONCURRENTLY on PostgreSQL, outside a transaction
from django.db import migrations, models

from shop.operations import AddIndexConcurrentlyWhereSupported


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("shop", "0003_rename_name_full_name")]
    operations = [
        AddIndexConcurrentlyWhereSupported(model_name="order",
                                           index=models.Index(fields=["total"], name="shop_order_total_idx")),
    ]
