"""The bare endpoint's table: one row per request, unique key (as a webhook receipt has)."""
from django.db import models


class BareEvent(models.Model):
    key = models.CharField(max_length=128, unique=True)
    action = models.CharField(max_length=64)
    received_at = models.DateTimeField(auto_now_add=True)
