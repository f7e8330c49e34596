"""The request and response bodies of the prediction service's HTTP API (pydantic).

They give the OpenAPI description its schemas and the server its validation;
:func:`error_responses` and :func:`body_spec` are the OpenAPI fragments the
routes of :mod:`ppboost.inference.server` share.
"""
from __future__ import annotations

from typing import get_type_hints

from pydantic import BaseModel, Field, create_model

from .service_config import OCTET
from .store import ModelRecord

__all__ = ["ErrorBody", "HealthBody", "ModelUpload", "ModelInfo", "UploadBody", "DeleteBody",
           "PredictRequest", "PredictBody", "error_responses", "body_spec"]


class ErrorBody(BaseModel):
    detail: str = Field(description="what was wrong and what was expected")
    field: str | None = Field(None, description="the offending input (header, path "
                                 "parameter or body field)")


class HealthBody(BaseModel):
    status: str
    service: str
    api_version: str
    max_batch: int
    max_body_bytes: int | None = Field(
        description="the largest predict body accepted now: the configured limit, else the "
                    "largest valid request for the served models (null when there is none)")
    max_model_bytes: int


class ModelUpload(BaseModel):
    model: str = Field(description="base64 of EncryptedModel.to_bytes()")


#: the public facts of a stored model, field for field those of
#: :class:`~ppboost.inference.store.ModelRecord` (one list of fields, kept by the store)
ModelInfo = create_model("ModelInfo", __module__=__name__,
                         **{name: (tp, ...) for name, tp in get_type_hints(ModelRecord).items()})


class UploadBody(ModelInfo):
    created: bool = Field(description="true if the user had no model before")
    token: str | None = Field(None, description="the user's new access token, shown only "
                                 "once; null when the previous token is kept")
    token_rotated: bool


class DeleteBody(BaseModel):
    user_id: str
    deleted: bool


class PredictRequest(BaseModel):
    query: str = Field(description="base64 of EncryptedQuery.to_bytes() (a batch of rows)")


class PredictBody(BaseModel):
    result: str = Field(description="base64 of EncryptedResult.to_bytes()")
    n_rows: int


def error_responses(*codes: int) -> dict:
    text = {400: "malformed body or bytes", 401: "bearer token absent or wrong",
            403: "this token may not do this", 404: "no model for this user",
            413: "body over the body limit or batch over max_batch",
            415: "unsupported Content-Type", 422: "well-formed but invalid input"}
    return {c: {"model": ErrorBody, "description": text[c]} for c in codes}


def body_spec(schema_model: type[BaseModel], description: str) -> dict:
    return {"requestBody": {"required": True, "description": description, "content": {
        "application/json": {"schema": schema_model.model_json_schema()},
        OCTET: {"schema": {"type": "string", "format": "binary"}}}}}
