from rest_framework import authentication, exceptions

from bridge.services.api_keys import authenticate_api_key


class ApiKeyUser:
    """The bot behind an API key: authenticated, scoped to one integration."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, api_key):
        self.api_key = api_key
        self.integration = api_key.integration

    def __str__(self):
        return f"api key {self.api_key.prefix}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, raw_key = header.partition(" ")
        if scheme.lower() != "bearer" or not raw_key.strip():
            raise exceptions.AuthenticationFailed("use `Authorization: Bearer <api key>`")
        api_key = authenticate_api_key(raw_key.strip())
        if api_key is None:
            raise exceptions.AuthenticationFailed("invalid or revoked API key")
        return ApiKeyUser(api_key), api_key

    def authenticate_header(self, request):
        return 'Bearer realm="api"'
