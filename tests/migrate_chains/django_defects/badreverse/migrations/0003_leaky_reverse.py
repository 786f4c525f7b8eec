# a reverse that does not undo the forward: the index stays after migrating back
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("badreverse", "0002_name_index")]
    operations = [migrations.RunSQL("CREATE INDEX badreverse_leaky ON badreverse_gadget (id, name)",
                                    reverse_sql="SELECT 1")]
