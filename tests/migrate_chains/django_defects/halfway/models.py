from django.db import models


class Part(models.Model):
    name = models.CharField(max_length=50)
    size = models.IntegerField(null=True)
