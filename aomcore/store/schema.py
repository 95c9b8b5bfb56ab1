"""The schema of every file in a workspace, checked whenever one is read back.

A workspace can arrive as a zip from someone else or be damaged on disk, so its files are
input like any other. Each kind of file has one pydantic model here:

========================  =====================  =========================================
file                      model                  read by
========================  =====================  =========================================
``workspace.json``        :class:`WorkspaceFile`   :meth:`Workspace.state`
``versions/vN/version.json``  :class:`VersionFile`  :meth:`Workspace.versions`
``runs/<id>/run.json``    :class:`RunFile`        :func:`aomcore.store.runs.read_run`
``jobs/<id>.json``        :class:`JobFile`        :func:`aomcore.store.job_records.read_job`
========================  =====================  =========================================

The models are strict about types (a mean given as ``"0.5"`` or an iteration of ``1e26``
is refused, never coerced) and open to fields they do not know (a newer version of the
program may add some). :func:`validate` turns the first error into one
:class:`~aomcore.base.errors.InputError` naming the file and the field, e.g.
``workspace.json: input_shape: expected 3 positive integers, found [1, 2]``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from ..base import limits
from ..base.errors import InputError

__all__ = ["JobFile", "JobParams", "RunFile", "VersionFile", "WorkspaceFile", "model_for", "short", "validate"]

_MAX_FOUND = 200
_BIG = 2**53  # integers above this do not survive a round trip through a float


def short(value: object, limit: int = _MAX_FOUND) -> str:
    """``repr(value)`` on one line, cut to ``limit`` characters (for ``found=`` in messages)."""
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _shape(value: list[int]) -> list[int]:
    if len(value) != 3 or any(v < 1 for v in value):
        raise PydanticCustomError("shape", "3 positive integers (channels, height, width)")
    return value


Count = Annotated[int, Field(ge=0, lt=_BIG)]
Index = Annotated[int, Field(ge=0, lt=_BIG)]
Shape = Annotated[list[int], AfterValidator(_shape)]
Channels = Annotated[list[float], Field(min_length=1, max_length=4)]


class _File(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow", populate_by_name=True)


class Prep(_File):
    mean: Channels | None = None
    std: Channels | None = None
    # The same ranges as the CLI and the dashboard (limits): what one accepts, the others read back.
    channels: Annotated[int, Field(ge=limits.CHANNELS_MIN, le=limits.CHANNELS_MAX)] | None = None
    resize: Annotated[int, Field(ge=limits.RESIZE_MIN, le=limits.RESIZE_MAX)] | None = None
    transform: Annotated[str, Field(max_length=1000)] | None = None
    per_class: Annotated[int, Field(ge=limits.PER_CLASS_MIN, le=limits.PER_CLASS_MAX)] | None = None
    skip_unreadable: bool = False


class DatasetSpec(_File):
    spec: str
    data_root: str | None = None
    prep: Prep = Field(default_factory=Prep)


class Grant(_File):
    user: str
    mode: Literal["read"] = "read"
    granted: float | None = None


class ResultEntry(_File):
    kind: str
    key: str
    digest: str | None = None
    created: float | None = None


class WorkspaceFile(_File):
    """``workspace.json``: the dataset, the architecture, the current version and the indexes."""

    schema_: int = Field(alias="schema", ge=1)
    name: str
    created: float = 0.0
    owner: str | None = None
    grants: list[Grant] = Field(default_factory=list)
    dataset: DatasetSpec
    arch: str | None = None
    num_classes: Annotated[int, Field(ge=1, lt=2**31)] | None = None
    input_shape: Shape | None = None
    classes: list[str] | None = None
    current_version: Index | None = None
    selection: dict[str, dict[str, list[Index]]] = Field(default_factory=dict)
    n_groups: dict[str, Annotated[int, Field(ge=1, lt=2**31)]] = Field(default_factory=dict)
    results: list[ResultEntry] = Field(default_factory=list)


class EditEntry(_File):
    kind: str
    layer: str
    kernels: list[Index] = Field(default_factory=list)
    n: Count = 0
    seed: Annotated[int, Field(ge=0, lt=2**63)] = 0
    name: str = ""


class VersionFile(_File):
    """``versions/vN/version.json``: one version's parent, edits, weights digest and metrics."""

    id: Index
    parent: Index | None = None
    edits: list[EditEntry] = Field(default_factory=list)
    digest: str
    metrics: dict[str, Any] = Field(default_factory=dict)
    note: str = ""
    created: float = 0.0
    retrain_seconds: float = 0.0
    retrain_config: dict[str, Any] | None = None
    run: str | None = None


class Snapshot(_File):
    iteration: Index
    file: str
    test_accuracy: float | None = None


class RunFile(_File):
    """``runs/<id>/run.json``: a training run's description, status and snapshots."""

    id: str
    kind: str
    status: str
    created: float = 0.0
    finished: float | None = None
    arch: str | None = None
    edits: list[EditEntry] = Field(default_factory=list)
    config: dict[str, Any] | None = None
    parent: Index | None = None
    version: Index | None = None
    job: str | None = None
    num_classes: Annotated[int, Field(ge=1, lt=2**31)] | None = None
    input_shape: Shape | None = None
    snapshots: list[Snapshot] = Field(default_factory=list)


class Progress(_File):
    done: Count = 0
    total: Count = 0
    text: str = ""


def _bounded(lo, hi):
    return Field(ge=lo, le=hi)


def _finite(value: float) -> float:
    if value != value or value in (float("inf"), float("-inf")):
        raise PydanticCustomError("finite", "a finite number")
    return value


Finite = Annotated[float, AfterValidator(_finite)]


class TrainParams(_File):
    """A job's training configuration (:class:`~aomcore.base.training.TrainConfig`), bounded as the CLI's."""

    epochs: Annotated[int, _bounded(limits.EPOCHS_MIN, limits.EPOCHS_MAX)] = 1
    lr: Annotated[Finite, Field(gt=0, le=10)] = 1e-3
    batch_size: Annotated[int, _bounded(limits.BATCH_SIZE_MIN, limits.BATCH_SIZE_MAX)] = 128
    optimizer: Literal["adam", "sgd", "adamw"] = "adam"
    seed: Annotated[int, _bounded(limits.SEED_MIN, limits.SEED_MAX)] = 0


class JobParams(_File):
    """A job's parameters: every number a job kind reads, in the range the CLI accepts for it
    (:mod:`aomcore.base.limits`), so a job record (a file) cannot ask for more than the CLI
    or the dashboard's widgets could. Kinds' other parameters are kept as they are."""

    version: Annotated[int, _bounded(limits.VERSION_MIN, limits.VERSION_MAX)] | None = None
    parent: Annotated[int, _bounded(limits.VERSION_MIN, limits.VERSION_MAX)] | None = None
    batch_size: Annotated[int, _bounded(limits.BATCH_SIZE_MIN, limits.BATCH_SIZE_MAX)] | None = None
    seed: Annotated[int, _bounded(limits.SEED_MIN, limits.SEED_MAX)] | None = None
    bins: Annotated[int, _bounded(limits.BINS_MIN, limits.BINS_MAX)] | None = None
    positions: Annotated[int, _bounded(limits.POSITIONS_MIN, limits.POSITIONS_MAX)] | Literal["all"] | None = None
    snapshots: Annotated[int, _bounded(limits.SNAPSHOTS_MIN, limits.SNAPSHOTS_MAX)] | None = None
    n: Annotated[int, _bounded(limits.SAMPLE_MIN, limits.SAMPLE_MAX)] | None = None
    n_iter: Annotated[int, _bounded(limits.N_ITER_MIN, limits.N_ITER_MAX)] | None = None
    perplexity: Annotated[Finite, _bounded(limits.PERPLEXITY_MIN, limits.PERPLEXITY_MAX)] | None = None
    retrain_epochs: Annotated[int, _bounded(limits.RETRAIN_EPOCHS_MIN, limits.RETRAIN_EPOCHS_MAX)] | None = None
    keep: Annotated[int, _bounded(limits.KEEP_MIN, limits.KEEP_MAX)] | None = None
    threshold: Finite | None = None
    layers: list[str] | None = None
    layer: str | None = None
    split: Literal["train", "test"] | None = None
    config: TrainParams | None = None


class JobFile(_File):
    """``jobs/<id>.json``: one background job's kind, parameters, status and progress."""

    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,64}$")]
    kind: str
    params: JobParams = Field(default_factory=JobParams)
    status: Literal["queued", "running", "done", "failed", "cancelled", "interrupted"]
    created: float = 0.0
    started: float | None = None
    finished: float | None = None
    host: str | None = None
    pid: Annotated[int, Field(ge=0, lt=2**31)] | None = None
    worker_pid: Annotated[int, Field(ge=0, lt=2**31)] | None = None
    user: str | None = None
    progress: Progress | None = None
    message: str | None = None
    result: Any = None


_EXPECTED = {"int_type": "an integer", "float_type": "a number", "string_type": "a string",
             "bool_type": "true or false", "list_type": "a list", "dict_type": "an object", "model_type": "an object",
             "model_attributes_type": "an object", "missing": "this field", "none_required": "null"}


def _expected(error: dict) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind in _EXPECTED:
        return _EXPECTED[kind]
    if kind in ("greater_than_equal", "less_than", "less_than_equal", "greater_than"):
        sign = {"greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<=", "greater_than": ">"}[kind]
        bound = next(iter(ctx.values()), "")
        return f"a number {sign} {bound}"
    if kind == "too_short":
        return f"at least {ctx.get('min_length')} items"
    if kind == "too_long":
        return f"at most {ctx.get('max_length')} items"
    if kind == "literal_error":
        return f"one of {ctx.get('expected')}"
    if kind == "string_pattern_mismatch":
        return "letters and digits"
    return error["msg"][:1].lower() + error["msg"][1:]


def _field(loc: tuple) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + str(part)
    return path


def validate(model: type[_File], data: object, file: str) -> _File:
    """``data`` checked against ``model``; the first problem as one message naming ``file`` and the field.

    Parameters
    ----------
    model : one of the models of this module
    data : object
        The file's parsed JSON.
    file : str
        How to name the file in the message (e.g. ``"versions/v3/version.json"``).

    Returns
    -------
    The validated model (its extra fields kept).

    Raises
    ------
    InputError
        ``"FILE: FIELD: expected …, found …"``; the found part is one line of at most 200
        characters.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [e for e in exc.errors() if e["type"] != "none_required"] or exc.errors()
        # a union of X | None reports both branches; the non-None branch says what was meant
        error = errors[0]
        loc = tuple(p for p in error["loc"] if not _is_union_tag(p))
        found = "nothing" if error["type"] == "missing" else short(error.get("input"))
        raise InputError(f"{file}: {_field(loc)}" if loc else file, expected=_expected(error), found=found) from None


def _is_union_tag(part: object) -> bool:
    """Whether a part of an error's location names a branch of ``X | None`` rather than a field."""
    return isinstance(part, str) and (bool(re.search(r"[\[(\-]", part)) or part in ("int", "float", "str", "bool")
                                      or part in {m.__name__ for m in _File.__subclasses__()})


def model_for(name: str) -> type[_File] | None:
    """The model of a workspace member by its relative path (POSIX), or None for other files."""
    parts = name.split("/")
    if parts == ["workspace.json"]:
        return WorkspaceFile
    if len(parts) == 3 and parts[0] == "versions" and parts[2] == "version.json":
        return VersionFile
    if len(parts) == 3 and parts[0] == "runs" and parts[2] == "run.json":
        return RunFile
    if len(parts) == 2 and parts[0] == "jobs" and parts[1].endswith(".json"):
        return JobFile
    return None
