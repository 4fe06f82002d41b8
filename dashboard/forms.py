"""Console forms. Secrets are write-only: inputs never carry the stored value back to the
browser, a blank input keeps what is stored, and only a masked hint (last 4 characters of a
long secret) says something is there."""
from __future__ import annotations

import base64
import binascii

from django import forms

from bridge.models import ApiKey, Integration, Tenant

MASK = "••••"


def masked(secret: str | None) -> str:
    """`••••abcd` for a long secret, `••••` for a short one (its last 4 would be most of it)."""
    if not secret:
        return "not set"
    return MASK + secret[-4:] if len(secret) >= 16 else MASK


def _secret_field(label: str) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        strip=True,
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "new-password", "spellcheck": "false", "class": "vTextField"}
        ),
    )


class IntegrationForm(forms.ModelForm):
    # form field → model field. The form fields are not the model's, so a blank one can never
    # overwrite the stored secret through ModelForm's construct_instance.
    SECRET_FIELDS = {
        "new_agent_token": "agent_token",
        "new_webhook_secret": "webhook_secret",
        "new_callback_secret": "callback_secret",
    }
    callback_url = forms.URLField(
        label="Callback URL",
        required=False,
        max_length=1000,
        assume_scheme="https",
        widget=forms.URLInput(attrs={"class": "vURLField"}),
        help_text="Where the console POSTs signed events for the bot (leave empty if the bot polls).",
    )
    new_agent_token = _secret_field("Agent token")
    new_webhook_secret = _secret_field("Webhook secret")
    new_callback_secret = _secret_field("Callback signing secret")

    class Meta:
        model = Integration
        fields = ["tenant", "name", "client_id", "organization_id", "group_id", "callback_url", "enabled"]
        help_texts = {
            "client_id": "The Client Id of your LiveChat app (Developer Console → your app → Authorization).",
            "organization_id": "Your LiveChat organization id.",
            "group_id": "Chats from the bot are routed to this LiveChat group (0 is the General group).",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        adding = self.instance._state.adding
        hints = {
            "new_agent_token": "Base64 of account_id:personal_access_token (the PAT needs chats and webhooks scopes).",
            "new_webhook_secret": "LiveChat sends it back in every webhook. Leave empty to let the console generate one.",
            "new_callback_secret": "Standard Webhooks secret (whsec_…) the bot verifies callbacks with. Leave empty to generate one.",
        }
        for form_name, model_name in self.SECRET_FIELDS.items():
            if form_name not in self.fields:
                continue
            field = self.fields[form_name]
            if adding:
                field.help_text = hints[form_name]
            else:
                stored = getattr(self.instance, model_name)
                field.help_text = f"Stored: {masked(stored)}. Write-only: leave blank to keep it. {hints[form_name].split('. ')[0].rstrip('.')}."
                field.widget.attrs["placeholder"] = f"{masked(stored)} (unchanged)"
        if adding and "new_agent_token" in self.fields:
            self.fields["new_agent_token"].required = True

    def clean_new_agent_token(self):
        value = self.cleaned_data.get("new_agent_token", "")
        if value:
            try:
                decoded = base64.b64decode(value, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise forms.ValidationError("This is not Base64. Encode account_id:personal_access_token.") from None
            if ":" not in decoded:
                raise forms.ValidationError("The decoded token must look like account_id:personal_access_token.")
        return value

    def clean_new_callback_secret(self):
        value = self.cleaned_data.get("new_callback_secret", "")
        if value:
            key = value.removeprefix("whsec_")
            try:
                raw = base64.b64decode(key, validate=True)
            except binascii.Error:
                raise forms.ValidationError("A callback secret is whsec_ followed by Base64.") from None
            if len(raw) < 16:
                raise forms.ValidationError("Use at least 16 random bytes.")
        return value

    @property
    def secret_values(self) -> dict[str, str]:
        """model field → new value, for the secrets typed in (blank ones keep the stored value)."""
        return {
            model_name: self.cleaned_data[form_name]
            for form_name, model_name in self.SECRET_FIELDS.items()
            if self.cleaned_data.get(form_name)
        }

    def changed_model_fields(self) -> list[str]:
        """Names (never values) of the model fields this form changes."""
        names = []
        for name in self.changed_data:
            if name in self.SECRET_FIELDS:
                if self.cleaned_data.get(name):
                    names.append(self.SECRET_FIELDS[name])
            else:
                names.append(name)
        return names

    def save(self, commit=True):
        instance = super().save(commit=False)
        for model_name, value in self.secret_values.items():
            setattr(instance, model_name, value)
        if commit:
            instance.save()
        return instance


class ApiKeyForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ["integration", "name"]
        help_texts = {"name": "What uses it, e.g. “production bot”. The key itself is shown once after saving."}


class TenantForm(forms.ModelForm):
    class Meta:
        model = Tenant
        fields = ["name", "slug", "transcript_retention_days"]

    def clean_transcript_retention_days(self):
        value = self.cleaned_data.get("transcript_retention_days")
        if value is not None and value < 1:
            raise forms.ValidationError("Keep transcripts at least one day, or leave empty to keep them forever.")
        return value
