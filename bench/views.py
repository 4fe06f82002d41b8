"""The floor of the stack: a bare DRF endpoint through the same middleware, gunicorn and
database that parses a webhook body and inserts one row in one transaction. Nothing is checked
beyond "it is JSON"; whatever the console's webhook does on top of this is the console's cost."""
from django.db import transaction
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from .models import BareEvent


class BareIngestView(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]

    def post(self, request):
        data = request.data
        event = (data.get("payload") or {}).get("event") or {}
        with transaction.atomic():
            BareEvent.objects.create(key=str(event.get("id") or data.get("webhook_id"))[:128],
                                     action=str(data.get("action") or "")[:64])
        return Response({"result": "processed"})
