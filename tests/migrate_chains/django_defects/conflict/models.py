from django.db import models


class Thing(models.Model):
    name = models.CharField(max_length=50)
    field_a = models.IntegerField(null=True)
    field_b = models.IntegerField(null=True)
