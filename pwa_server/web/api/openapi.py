"""The OpenAPI 3.1 document, made from the operation table and the pydantic models that
validate requests (OpenAPI 3.1 schemas are JSON Schema 2020-12, which pydantic writes)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from pwa_server.web.api.operations import PREFIX, Operation
from pwa_server.web.api.problems import MEDIA_TYPE as PROBLEM_MEDIA_TYPE

_REF = "#/components/schemas/{model}"


def document(operations: list[Operation], *, server_url: str, version: str) -> dict[str, Any]:
    """The whole document, with one schema per model under components."""
    models: set[type[BaseModel]] = set()
    for operation in operations:
        if operation.body is not None:
            models.add(operation.body)
        models.update(model for _, model in operation.responses.values() if model is not None)
    ordered = sorted(models, key=lambda model: model.__name__)
    # Requests are validated, answers serialised: each model in the mode it is used in.
    keyed, definitions = models_json_schema(
        [(model, "serialization") for model in ordered]
        + [(op.body, "validation") for op in operations if op.body is not None],
        ref_template=_REF,
    )
    paths: dict[str, dict[str, Any]] = {}
    for operation in operations:
        paths.setdefault(PREFIX + operation.path, {})[operation.method.lower()] = _operation(
            operation, keyed
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Shomei relying-site API",
            "version": version,
            "description": (
                "Enrollments and certificates of a relying site. Authenticate with "
                "`Authorization: Bearer <API key>`. Errors are RFC 9457 problem documents."
            ),
        },
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"apiKey": []}],
    }


def _operation(operation: Operation, keyed: dict[Any, Any]) -> dict[str, Any]:
    described: dict[str, Any] = {
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "responses": {
            str(status): _response(status, description, model, keyed, operation.media_type)
            for status, (description, model) in sorted(operation.responses.items())
        },
    }
    if operation.tags:
        described["tags"] = list(operation.tags)
    if operation.public:
        described["security"] = []
    if operation.parameters:
        described["parameters"] = [
            {
                "name": parameter.name,
                "in": parameter.location,
                "required": parameter.required,
                "description": parameter.description,
                "schema": parameter.schema,
            }
            for parameter in operation.parameters
        ]
    if operation.body is not None:
        described["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": keyed[(operation.body, "validation")]}},
        }
    return described


def _response(
    status: int,
    description: str,
    model: type[BaseModel] | None,
    keyed: dict[Any, Any],
    success_media_type: str,
) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description}
    if model is not None:
        media_type = PROBLEM_MEDIA_TYPE if status >= 400 else success_media_type
        response["content"] = {media_type: {"schema": keyed[(model, "serialization")]}}
    return response
