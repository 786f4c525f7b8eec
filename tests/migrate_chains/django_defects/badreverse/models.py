from django.db import models


class Gadget(models.Model):
    name = models.CharField(max_length=50)

    class Meta:
        indexes = [models.Index(fields=["name"], name="badreverse_name_idx")]
