from django.db import models


class Widget(models.Model):
    name = models.CharField(max_length=50)
    colour = models.CharField(max_length=20, default="red")  # no migration adds it
