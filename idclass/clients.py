"""Who is asking: the client's address, and the key the upload rate limit counts it under."""
import hashlib
import hmac

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """The connection's address, or the one the proxy in front says (IDCLASS_CLIENT_IP_HEADER)."""
    if settings.IDCLASS_CLIENT_IP_HEADER:
        meta_key = "HTTP_" + settings.IDCLASS_CLIENT_IP_HEADER.upper().replace("-", "_")
        forwarded = request.META.get(meta_key, "").split(",")[-1].strip()  # the last hop is the proxy's own
        if forwarded:
            return forwarded
    return request.META.get("REMOTE_ADDR", "")


def client_key(request: HttpRequest) -> str:
    """A signed-in user by id, anyone else by address; addresses are personal data, so only a keyed hash is kept."""
    if request.user.is_authenticated:
        return f"user:{request.user.pk}"
    digest = hmac.new(settings.SECRET_KEY.encode(), client_ip(request).encode(), hashlib.sha256).hexdigest()
    return f"ip:{digest[:32]}"
