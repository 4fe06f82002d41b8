from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView


class CurrentIntegrationView(APIView):
    """Which integration this API key speaks for: a cheap way for a bot to check its key."""

    @extend_schema(
        responses=inline_serializer(
            "CurrentIntegration",
            {"id": serializers.UUIDField(), "name": serializers.CharField(), "tenant": serializers.CharField()},
        )
    )
    def get(self, request):
        integration = request.user.integration
        return Response({"id": str(integration.id), "name": integration.name, "tenant": integration.tenant.slug})
