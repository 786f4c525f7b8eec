# a rename: clients still reading "name" break (squawk: renaming-column)
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("shop", "0002_customer_status")]
    operations = [migrations.RenameField(model_name="customer", old_name="name", new_name="full_name")]
