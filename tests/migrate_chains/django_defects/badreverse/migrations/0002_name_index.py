# a plain CREATE INDEX: on PostgreSQL it blocks writes while it builds (squawk: require-concurrent-index-creation)
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("badreverse", "0001_initial")]
    operations = [migrations.AddIndex(model_name="gadget",
                                      index=models.Index(fields=["name"], name="badreverse_name_idx"))]
