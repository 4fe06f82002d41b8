"""The bot API: thin views over bridge.services, every query scoped by the key's integration."""
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from bridge.services import outbound, sessions, users

from . import serializers as s
from .idempotency import IDEMPOTENCY_PARAMETER, idempotent
from .schema import error_responses
from .throttling import ApiKeyRateThrottle

SESSION_ID = "7d4f5a8e-3c1b-4b55-9d6e-0f5a2c1e9b10"


class BotAPIView(APIView):
    """Authenticated by API key (settings), rate-limited per key."""

    throttle_classes = [ApiKeyRateThrottle]

    @property
    def integration(self):
        return self.request.user.integration

    def valid(self, serializer_class, data):
        serializer = serializer_class(data=data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


class CurrentIntegrationView(BotAPIView):
    """Which integration this API key speaks for: a cheap way for a bot to check its key."""

    @extend_schema(
        responses={
            200: inline_serializer(
                "CurrentIntegration",
                {"id": serializers.UUIDField(), "name": serializers.CharField(), "tenant": serializers.CharField()},
            ),
            **error_responses(),
        }
    )
    def get(self, request):
        integration = request.user.integration
        return Response({"id": str(integration.id), "name": integration.name, "tenant": integration.tenant.slug})


class UsersView(BotAPIView):
    @extend_schema(
        summary="Create or update a user",
        description="Creates the user (201) or, when `external_id` exists, updates the given fields (200).",
        request=s.UserInput,
        responses={201: s.UserOutput, 200: s.UserOutput, **error_responses(400, 409, 413)},
        parameters=[IDEMPOTENCY_PARAMETER],
        examples=[
            OpenApiExample("user", value={"external_id": "u-123", "name": "Ada Lovelace", "email": "ada@example.com"},
                           request_only=True),
            OpenApiExample("created", value={"id": 17, "external_id": "u-123", "name": "Ada Lovelace",
                                             "email": "ada@example.com"}, response_only=True, status_codes=["201"]),
        ],
    )
    @idempotent
    def post(self, request):
        data = self.valid(s.UserInput, request.data)
        user, created = users.upsert_user(integration=self.integration, **data)
        return Response(s.UserOutput(user).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class SessionsView(BotAPIView):
    @extend_schema(
        summary="Hand a conversation over to an agent",
        description=(
            "Opens a LiveChat chat in the integration's group. The title, description and transcript are "
            "posted as the chat's opening messages, in order; `metadata` becomes the customer's session "
            "fields. LiveChat is called within the request (transient errors retried for about 10 s): when "
            "it still fails the answer is 502 `livechat_error` and the session is recorded as `failed`. "
            "409 `conflict` names the open session of the conversation in `error.details.session_id`."
        ),
        request=s.SessionInput,
        responses={201: s.SessionCreatedOutput, **error_responses(400, 404, 409, 413, 502)},
        parameters=[IDEMPOTENCY_PARAMETER],
        examples=[
            OpenApiExample(
                "handoff",
                request_only=True,
                value={
                    "conversation_id": "conv-42",
                    "user": {"external_id": "u-123", "name": "Ada Lovelace", "email": "ada@example.com"},
                    "title": "Refund for order 1001",
                    "description": "The customer asks for a refund the bot cannot grant.",
                    "transcript": [
                        {"author": "user", "text": "I want my money back for order 1001"},
                        {"author": "bot", "text": "I can't refund orders myself. Let me get you a human."},
                    ],
                    "metadata": {"order_id": "1001", "plan": "pro"},
                },
            ),
            OpenApiExample(
                "started",
                response_only=True,
                status_codes=["201"],
                value={"id": SESSION_ID, "status": "waiting", "conversation_id": "conv-42",
                       "livechat_chat_id": "PJ0MRSHTDG", "created_at": "2025-08-01T10:00:00Z"},
            ),
        ],
    )
    @idempotent
    def post(self, request):
        data = self.valid(s.SessionInput, request.data)
        if "user" in data:
            end_user, _ = users.upsert_user(integration=self.integration, **data["user"])
        else:
            end_user = users.get_user(integration=self.integration, user_id=data["user_id"])
        session = sessions.start_session(
            integration=self.integration,
            end_user=end_user,
            conversation_id=data["conversation_id"],
            title=data["title"],
            description=data["description"],
            transcript=[dict(entry) for entry in data["transcript"]],
            metadata=data["metadata"],
        )
        return Response(s.SessionCreatedOutput(session).data, status=status.HTTP_201_CREATED)


class SessionDetailView(BotAPIView):
    @extend_schema(
        summary="A session's state",
        responses={200: s.SessionOutput, **error_responses(404)},
        examples=[
            OpenApiExample(
                "assigned",
                value={"id": SESSION_ID, "status": "assigned", "conversation_id": "conv-42", "user_id": 17,
                       "livechat_chat_id": "PJ0MRSHTDG", "agent": {"id": "smith@example.com", "name": "Agent Smith"},
                       "created_at": "2025-08-01T10:00:00Z", "closed_at": None, "closed_by": "",
                       "close_reason": "", "last_error": ""},
            )
        ],
    )
    def get(self, request, session_id):
        session = sessions.get_session(integration=self.integration, session_id=session_id)
        return Response(s.SessionOutput(session).data)


class SessionMessagesView(BotAPIView):
    @extend_schema(
        summary="Send a user message to the agent",
        description=(
            "Stores the message and sends it to LiveChat in the background, in order. Images and files are "
            "fetched from `url` (at most 10 MB) and uploaded. The same `external_id` again answers 200 with the "
            "first message. A session that is over refuses new messages with 409 `conflict`."
        ),
        request=s.MessageInput,
        responses={202: s.MessageAcceptedOutput, 200: s.MessageAcceptedOutput, **error_responses(400, 404, 409, 413)},
        parameters=[IDEMPOTENCY_PARAMETER],
        examples=[
            OpenApiExample("text", request_only=True,
                           value={"type": "text", "text": "Here is my receipt", "external_id": "m-1"}),
            OpenApiExample("image", request_only=True,
                           value={"type": "image", "url": "https://files.example.com/receipt.png",
                                  "external_id": "m-2"}),
            OpenApiExample("accepted", response_only=True, status_codes=["202"],
                           value={"id": 501, "status": "pending", "external_id": "m-1"}),
        ],
    )
    @idempotent
    def post(self, request, session_id):
        session = sessions.get_session(integration=self.integration, session_id=session_id)
        data = self.valid(s.MessageInput, request.data)
        message, created = outbound.queue_message(
            session=session, kind=data["type"], text=data["text"], url=data["url"],
            external_id=data["external_id"] or None,
        )
        message.refresh_from_db(fields=["delivery_state"])
        return Response(
            s.MessageAcceptedOutput(message).data, status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK
        )

    @extend_schema(
        summary="The session's messages, for bots that poll",
        description=(
            "Messages in order: the user's (to the agent) and the agents' (to the bot). Agents' internal notes "
            "are never included. Pass the last id you saw as `after` to get only newer ones."
        ),
        parameters=[s.MessageListInput],
        responses={200: s.MessageListOutput, **error_responses(400, 404)},
        examples=[
            OpenApiExample(
                "agent reply",
                value={"results": [{"id": 502, "direction": "to_bot", "author": "agent", "type": "text",
                                    "text": "Hi Ada, I can help with that.", "url": "", "external_id": None,
                                    "status": "received", "error": "",
                                    "agent": {"id": "smith@example.com", "name": "Agent Smith"},
                                    "created_at": "2025-08-01T10:01:00Z"}],
                       "has_more": False},
            )
        ],
    )
    def get(self, request, session_id):
        session = sessions.get_session(integration=self.integration, session_id=session_id)
        query = self.valid(s.MessageListInput, request.query_params)
        limit = query["limit"]
        page = sessions.session_messages(session=session, after=query.get("after"), limit=limit + 1)
        body = {"results": s.MessageOutput(page[:limit], many=True).data, "has_more": len(page) > limit}
        return Response(body)


class SessionStopView(BotAPIView):
    @extend_schema(
        summary="Hand the conversation back to the bot",
        description=(
            "Closes the LiveChat chat and the session. Idempotent: stopping a session that is over answers "
            "200 again without calling LiveChat."
        ),
        request=s.StopInput,
        responses={200: s.StopOutput, **error_responses(400, 404, 409, 413, 502)},
        parameters=[IDEMPOTENCY_PARAMETER],
        examples=[
            OpenApiExample("stop", request_only=True, value={"reason": "resolved by the agent"}),
            OpenApiExample("stopped", response_only=True, status_codes=["200"],
                           value={"id": SESSION_ID, "status": "closed", "closed_at": "2025-08-01T10:30:00Z",
                                  "closed_by": "bot", "close_reason": "resolved by the agent"}),
        ],
    )
    @idempotent
    def post(self, request, session_id):
        session = sessions.get_session(integration=self.integration, session_id=session_id)
        data = self.valid(s.StopInput, request.data)
        session = sessions.stop_session(session=session, reason=data["reason"])
        return Response(s.StopOutput(session).data)
