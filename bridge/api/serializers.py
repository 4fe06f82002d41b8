"""Input and output shapes of the bot API. Inputs ignore unknown fields (additive clients)."""
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from bridge.models import EndUser, HitlSession, Message

MAX_TEXT_BYTES = 16_000  # LiveChat's per-event text limit is 16 KB
MAX_TRANSCRIPT_ENTRIES = 1000
MAX_METADATA_FIELDS = 50


class TextBytesLimit:
    """Refuses text whose UTF-8 form is over `limit` bytes (LiveChat counts bytes)."""

    def __init__(self, limit: int):
        self.limit = limit

    def __call__(self, value):
        size = len(value.encode())
        if size > self.limit:
            raise serializers.ValidationError(
                f"is {size} bytes; at most {self.limit} bytes are allowed, split it into several messages"
            )


# ------------------------------------------------------------------ users

class UserInput(serializers.Serializer):
    external_id = serializers.CharField(max_length=255, help_text="The bot's own id for this user.")
    name = serializers.CharField(max_length=255, required=False, allow_blank=True)
    email = serializers.EmailField(max_length=255, required=False, allow_blank=True)
    picture_url = serializers.URLField(max_length=1000, required=False, allow_blank=True)


class UserOutput(serializers.ModelSerializer):
    # Plain text: "" when the bot gave no email, which an `email`-format schema would reject.
    email = serializers.CharField(read_only=True)

    class Meta:
        model = EndUser
        fields = ["id", "external_id", "name", "email"]


# ------------------------------------------------------------------ sessions

class TranscriptEntry(serializers.Serializer):
    author = serializers.ChoiceField(choices=["user", "bot"])
    text = serializers.CharField(max_length=100_000, trim_whitespace=False)
    created_at = serializers.DateTimeField(required=False)


class MetadataField(serializers.DictField):
    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if len(value) > MAX_METADATA_FIELDS:
            raise serializers.ValidationError(f"has {len(value)} keys; at most {MAX_METADATA_FIELDS} are allowed")
        for key in value:
            if not key or len(key) > 100:
                raise serializers.ValidationError("keys must be 1 to 100 characters long")
        return value


class SessionInput(serializers.Serializer):
    conversation_id = serializers.CharField(max_length=255, help_text="The bot's id for this conversation.")
    user_id = serializers.IntegerField(required=False, min_value=1, help_text="A user made with POST /users.")
    user = UserInput(required=False, help_text="Or the user itself: created or updated by external_id.")
    title = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    description = serializers.CharField(max_length=10_000, required=False, allow_blank=True, default="")
    transcript = TranscriptEntry(many=True, required=False, default=list, max_length=MAX_TRANSCRIPT_ENTRIES)
    metadata = MetadataField(required=False, default=dict, help_text="Shown to the agent as session fields.")

    def validate(self, attrs):
        if ("user_id" in attrs) == ("user" in attrs):
            raise serializers.ValidationError({"user": "give either user_id or user, not both and not neither"})
        return attrs


class AgentOutput(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()


class SessionOutput(serializers.ModelSerializer):
    livechat_chat_id = serializers.CharField(source="chat_id")
    agent = serializers.SerializerMethodField()
    user_id = serializers.IntegerField(source="end_user_id")

    class Meta:
        model = HitlSession
        fields = [
            "id", "status", "conversation_id", "user_id", "livechat_chat_id", "agent", "created_at",
            "closed_at", "closed_by", "close_reason", "last_error",
        ]

    @extend_schema_field(AgentOutput(allow_null=True))
    def get_agent(self, session):
        if not session.agent_id:
            return None
        return {"id": session.agent_id, "name": session.agent_name}


class SessionCreatedOutput(serializers.ModelSerializer):
    livechat_chat_id = serializers.CharField(source="chat_id")

    class Meta:
        model = HitlSession
        fields = ["id", "status", "conversation_id", "livechat_chat_id", "created_at"]


class StopInput(serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class StopOutput(serializers.ModelSerializer):
    class Meta:
        model = HitlSession
        fields = ["id", "status", "closed_at", "closed_by", "close_reason"]


# ------------------------------------------------------------------ messages

class MessageInput(serializers.Serializer):
    type = serializers.ChoiceField(choices=["text", "image", "file"], default="text")
    text = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False,
                                 validators=[TextBytesLimit(MAX_TEXT_BYTES)])
    url = serializers.URLField(max_length=2000, required=False, allow_blank=True, default="",
                               help_text="For image and file: where to fetch it (at most 10 MB).")
    external_id = serializers.CharField(max_length=255, required=False, allow_blank=True, default="",
                                        help_text="The bot's id of the message: sending it again changes nothing.")

    def validate(self, attrs):
        if attrs["type"] == "text" and not attrs["text"].strip():
            raise serializers.ValidationError({"text": "a text message needs non-empty text"})
        if attrs["type"] != "text":
            if not attrs["url"]:
                raise serializers.ValidationError({"url": f"an {attrs['type']} message needs the url to fetch it from"})
            if not attrs["url"].lower().startswith(("http://", "https://")):
                raise serializers.ValidationError({"url": "only http(s) URLs can be fetched"})
        return attrs


class MessageAcceptedOutput(serializers.ModelSerializer):
    status = serializers.CharField(source="delivery_state")

    class Meta:
        model = Message
        fields = ["id", "status", "external_id"]


class MessageOutput(serializers.ModelSerializer):
    type = serializers.CharField(source="kind")
    status = serializers.CharField(source="delivery_state")
    error = serializers.CharField(source="last_error")
    agent = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = [
            "id", "direction", "author", "type", "text", "url", "external_id", "status", "error", "agent", "created_at",
        ]

    @extend_schema_field(AgentOutput(allow_null=True))
    def get_agent(self, message):
        if not message.agent_id:
            return None
        session = message.session
        name = message.payload.get("agent_name") or (session.agent_name if session.agent_id == message.agent_id else "")
        return {"id": message.agent_id, "name": name or ""}


class MessageListInput(serializers.Serializer):
    after = serializers.IntegerField(required=False, min_value=0, help_text="Only messages with a larger id.")
    limit = serializers.IntegerField(required=False, min_value=1, max_value=500, default=100)


class MessageListOutput(serializers.Serializer):
    results = MessageOutput(many=True)
    has_more = serializers.BooleanField()
