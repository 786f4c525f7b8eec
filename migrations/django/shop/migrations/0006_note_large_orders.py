# a data migration with its reverse: orders of 100 or more get a note, and lose it again
from django.db import migrations


def note_large(apps, schema_editor):
    Order = apps.get_model("shop", "Order")
    Order.objects.filter(total__gte=100, note__isnull=True).update(note="large")


def unnote_large(apps, schema_editor):
    Order = apps.get_model("shop", "Order")
    Order.objects.filter(note="large").update(note=None)


class Migration(migrations.Migration):
    dependencies = [("shop", "0005_upper_names")]
    operations = [migrations.RunPython(note_large, unnote_large)]
