"""MLflow `authorization_function` that behaves like Hokusai's API-key gateway.

Configured in the auth ini as `authorization_function = devstack.gateway:authenticate_request`.
- The key comes as `Authorization: Bearer <key>`, `Authorization: ApiKey <key>` or `X-API-Key: <key>`.
- Unknown or revoked key: 401 JSON. Registry lock on (DEVSTACK_REGISTRY_LOCK=1) and the key is not an
  admin key: 403 `REGISTRY_ADMIN_REQUIRED`. A write without a write scope: 403 `FORBIDDEN`.
- Plain Basic auth still works (MLflow's own users, e.g. the admin).
A key that passes is mapped to its MLflow user, so MLflow's own per-resource permissions still apply.
"""

import json
import os

from flask import Response, request
from mlflow.server.auth import authenticate_request_basic_auth
from werkzeug.datastructures import Authorization

from .keystore import KeyStore

# POST endpoints of MLflow's REST API that only read.
READ_ONLY_POST_SUFFIXES = ("/search", "/get-latest-versions", "/batch-get", "/search-datasets")

_store: KeyStore | None = None


def _keystore() -> KeyStore:
    global _store
    if _store is None:
        _store = KeyStore(os.environ["DEVSTACK_KEYS_FILE"])
    return _store


def _json_response(status: int, error_code: str, message: str, **headers: str) -> Response:
    body = json.dumps({"error_code": error_code, "message": message})
    return Response(body, status=status, mimetype="application/json", headers=headers)


def _presented_key() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() in ("bearer", "apikey") and value.strip():
        return value.strip()
    api_key = request.headers.get("X-API-Key", "").strip()
    return api_key or None


def is_write_request() -> bool:
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return False
    if request.method == "POST" and request.path.rstrip("/").endswith(READ_ONLY_POST_SUFFIXES):
        return False
    return True


def authenticate_request() -> Authorization | Response:
    key = _presented_key()
    if key is None:
        if request.authorization is not None and request.authorization.type == "basic":
            return authenticate_request_basic_auth()
        return _json_response(
            401,
            "UNAUTHENTICATED",
            "No API key. Send it as 'Authorization: Bearer <key>', 'Authorization: ApiKey <key>' or 'X-API-Key'.",
            **{"WWW-Authenticate": 'Bearer realm="hokusai"'},
        )
    record = _keystore().lookup(key)
    if record is None or record.revoked:
        reason = "revoked" if record is not None else "not recognised"
        return _json_response(
            401,
            "INVALID_API_KEY",
            f"API key {reason}. Create a new key in your Hokusai account settings.",
            **{"WWW-Authenticate": 'Bearer realm="hokusai", error="invalid_token"'},
        )
    if os.environ.get("DEVSTACK_REGISTRY_LOCK") == "1" and not record.admin:
        return _json_response(
            403,
            "REGISTRY_ADMIN_REQUIRED",
            "Registry access is currently limited to admin keys.",
        )
    if is_write_request() and not record.can_write:
        return _json_response(
            403,
            "FORBIDDEN",
            "This API key has no write scope (model:write, mlflow:write or admin).",
        )
    return Authorization("basic", {"username": record.username, "password": ""})
