"""The keep/drop selection of a layer, kept in step with its group cut (Explore and Select kernels).

The workspace stores per version digest and layer the kept kernels (``ws.selection``) and,
beside them in ``workspace.json["selection_origin"]``, where they came from: the cut whose
suggestion they are (``{"n_groups": n}``) or ``"user"`` once the user changed them. A
suggested selection follows the cut when it moves; a user's edits stay unless the user lets
them go ("keep my edits" off, or *Reset to the suggestion*).
"""

from __future__ import annotations

import aomcore
from aomcore import Workspace


def origin(ws: Workspace, digest: str, layer: str):
    """``{"n_groups": n}``, ``"user"`` or None (no selection yet)."""
    return ws.state().get("selection_origin", {}).get(digest, {}).get(layer)


def store(ws: Workspace, digest: str, layer: str, keep: list[int], source) -> None:
    """Write the layer's kept kernels and their origin (``{"n_groups": n}`` or ``"user"``)."""
    keep = sorted(int(k) for k in keep)

    def change(state):
        state.setdefault("selection", {}).setdefault(digest, {})[layer] = keep
        state.setdefault("selection_origin", {}).setdefault(digest, {})[layer] = source

    ws.modify(change)


def suggestion(views: dict) -> list[int]:
    """:func:`aomcore.suggest_keep` at the cut of ``views`` (``ui.cached.views``)."""
    return aomcore.suggest_keep(views["selectivity"], views["groups"], views["flags"])


def sync(ws: Workspace, digest: str, layer: str, n_groups: int, views: dict) -> tuple[list[int], bool]:
    """The layer's selection after the cut ``n_groups``: a missing or suggested selection
    becomes the suggestion at this cut; a user's edits stay. Returns (kept, user_edited)."""
    keep = ws.selection(digest).get(layer)
    source = origin(ws, digest, layer)
    if keep is not None and source in ("user", None):  # None: stored before origins were (treat as the user's)
        return keep, True
    if keep is None or source != {"n_groups": int(n_groups)}:
        keep = suggestion(views)
        store(ws, digest, layer, keep, {"n_groups": int(n_groups)})
    return keep, False


def toggle(ws: Workspace, digest: str, layer: str, kernel: int, kept: list[int]) -> list[int]:
    """Keep ``kernel`` if dropped, drop it if kept (a user edit); returns the new kept list."""
    new = sorted(set(kept) ^ {int(kernel)})
    store(ws, digest, layer, new, "user")
    return new
