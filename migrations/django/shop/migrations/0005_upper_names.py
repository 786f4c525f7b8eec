# a data migration with no reverse: the original spelling of the names is gone, so the chain cannot be migrated
# back past it (migrate.downgrade_restores names it)
from django.db import migrations
from django.db.models.functions import Upper


def upper_names(apps, schema_editor):
    Customer = apps.get_model("shop", "Customer")
    Customer.objects.update(full_name=Upper("full_name"))


class Migration(migrations.Migration):
    dependencies = [("shop", "0004_order_total_index")]
    operations = [migrations.RunPython(upper_names)]
