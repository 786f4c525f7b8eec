# atomic (the default): the added column is rolled back where DDL is transactional, left behind where it is not
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("halfway", "0001_initial")]
    operations = [
        migrations.AddField(model_name="part", name="size", field=models.IntegerField(null=True)),
        migrations.RunSQL("INSERT INTO halfway_no_such_table VALUES (1)", reverse_sql=migrations.RunSQL.noop),
    ]
