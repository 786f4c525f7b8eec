# a unique constraint on a populated column: it holds only if the existing rows are already distinct
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0007_order_total_decimal")]
    operations = [
        migrations.AddConstraint(model_name="customer",
                                 constraint=models.UniqueConstraint(fields=["full_name"],
                                                                    name="shop_customer_full_name_uniq")),
    ]
