"""What requests carry and answers hold: pydantic models, and the two value types that parse ids
and times (the OpenAPI document describes each as it is read)."""
from __future__ import annotations

from typing import Annotated, Union

from fastapi import Path as PathParameter
from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, StrictStr, WithJsonSchema,
                      model_validator)

from ...data.timestamps import TIME_FORMS, parse_time


def id_text(value) -> str:
    """A user or item id: a non-empty string or an integer, matched by its text as in the tracker."""
    if type(value) is str and 0 < len(value) <= 200:
        return value
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"expected a string or integer id, got {'null' if value is None else type(value).__name__}")
    text = str(value)
    if not text or len(text) > 200:
        raise ValueError("ids must be 1 to 200 characters long")
    return text


def _time(name: str):
    """A time field read as every surface reads times; a refusal names the field."""
    return Annotated[int, BeforeValidator(lambda value: parse_time(value, name)), WithJsonSchema(
        {"anyOf": [{"type": "integer"}, {"type": "number"}, {"type": "string", "format": "date-time"}],
         "description": TIME_FORMS + " (naive dates: UTC)"})]


# What the OpenAPI document says of them (the validators accept more than their Python types).
Id = Annotated[str, BeforeValidator(id_text), WithJsonSchema(
    {"anyOf": [{"type": "string", "minLength": 1, "maxLength": 200}, {"type": "integer"}],
     "description": "an id, matched by its text (42 and \"42\" are one id)"})]
Time = _time("time")
At = _time("at")
UserId = Annotated[str, PathParameter(min_length=1, max_length=200)]


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: Id
    item: Id
    time: Time
    id: str | None = Field(None, min_length=1, max_length=200, description="idempotency key: a retried "
                                                                            "event is applied once")


class EventsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[EventIn] = Field(min_length=1)


class EventsOut(BaseModel):
    applied: int
    duplicates: int
    unknown_items: list[Union[StrictStr, StrictInt]]


#: items one POST /v1/recommendations may ask for (users x k): one call must not hold the service
MAX_ITEMS_PER_CALL = 100_000


class RecommendationsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    users: list[Id] = Field(min_length=1, max_length=1000)
    k: int = Field(10, ge=1, le=1000)
    at: At | None = None
    exclude_seen: bool = False

    @model_validator(mode="after")
    def _bounded(self):
        if len(self.users) * self.k > MAX_ITEMS_PER_CALL:
            raise ValueError(f"users x k must be at most {MAX_ITEMS_PER_CALL:,} items per call, got "
                             f"{len(self.users)} x {self.k}; split the users over several calls")
        return self


class RecommendedItem(BaseModel):
    item: Union[StrictStr, StrictInt]
    score: float
    title: str | None = Field(None, description="where the run's item file has titles")
    categories: list[str] | None = Field(None, description="where the items have categories")


class RecommendationsOut(BaseModel):
    user: str
    at: int
    hours_since_last_event: float | None
    model: str
    cold_start: bool
    items: list[RecommendedItem]


class ManyRecommendationsOut(BaseModel):
    results: list[RecommendationsOut]


class InterestOut(BaseModel):
    user: str
    at: int
    model: str
    cold_start: bool
    hours_since_last_event: float | None
    interest: dict[str, float] = Field(description="forecast share of each category")


class Contribution(BaseModel):
    item: Union[StrictStr, StrictInt]
    time: int
    contribution: float


class ExplanationOut(BaseModel):
    user: str
    item: Union[StrictStr, StrictInt]
    at: int
    model: str
    score: float
    elapsed_time_effect: float
    events: list[Contribution]


class ForgetOut(BaseModel):
    user: str
    forgotten: bool


class ReloadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    run: str | None = Field(None, description="another run directory to serve (default: the one served)")
    model: str | None = None
