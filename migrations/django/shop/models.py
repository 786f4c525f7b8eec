"""The reference app's models: what its migrations build (migrate.model_drift compares the two)."""

from django.db import models


class Customer(models.Model):
    full_name = models.CharField(max_length=100)
    status = models.CharField(max_length=20, default="active")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["full_name"], name="shop_customer_full_name_uniq")]


class Order(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    note = models.CharField(max_length=200, null=True)

    class Meta:
        indexes = [models.Index(fields=["total"], name="shop_order_total_idx")]
