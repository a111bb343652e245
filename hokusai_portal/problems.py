"""Problem details (RFC 9457): how the API says what went wrong, as `application/problem+json`.

    {"type": "about:blank", "title": "Forbidden", "status": 403, "cause": "SCOPE_MISSING",
     "detail": "This token lacks the scope checks:run.", "scope": "checks:run"}

`cause` is a stable code in the portal's style (uppercase, never renamed); `detail` is for people. Kept at
the edge (not in the api app) so the middleware can answer /api/ paths in the same shape."""

import json
from http import HTTPStatus

from django.http import HttpResponse

PROBLEM_JSON = "application/problem+json"


def problem_response(status: int, cause: str, detail: str, headers: dict | None = None, **extra) -> HttpResponse:
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "cause": cause}
    body |= {"detail": detail, **extra}
    response = HttpResponse(json.dumps(body), status=status, content_type=PROBLEM_JSON)
    for name, value in (headers or {}).items():
        response[name] = value
    return response
