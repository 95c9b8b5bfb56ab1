"""Where the analyst is in the paper's loop (Fig. 1), and the next step, for the version shown.

The loop of one version: it is trained (or retrained by an edit), compared with the version
it came from (keep it or revert), its maps are computed, looked at, kernels are chosen, and an
edit makes the next version. A step is done when its result is on disk (a model, maps, an
edit's child version, a selection the user changed) or, for the steps that only look, when this
tab has opened its page for this version (:func:`ui.state.visited`).
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from ui.state import View, visited

MODEL_DATA = "app_pages/workspace/model_data.py"
COMPUTE_MAPS = "app_pages/aom/compute_maps.py"
EXPLORE = "app_pages/aom/explore.py"
SELECT = "app_pages/aom/select_kernels.py"
EDIT = "app_pages/aom/edit_retrain.py"
VERSIONS = "app_pages/aom/versions.py"

#: The pages that show the loop bar (url paths of ``st.Page``).
LOOP_PAGES = {"model_data", "compute_maps", "explore", "layer_overview", "select_kernels", "edit_retrain", "versions"}

#: Pages that count as having looked at a step.
LOOKED = {"compare": {"versions"}, "explore": {"explore", "layer_overview"}, "select": {"select_kernels"}}


@dataclass(frozen=True)
class Step:
    """One step of the loop: ``key``, a short ``name``, the ``page`` that does it, whether it is
    ``done`` for the version shown, what to do there (``todo``, one sentence) and a link's ``label``."""

    key: str
    name: str
    page: str
    done: bool
    todo: str
    label: str


def loop_steps(v: View) -> list[Step]:
    """The loop of the current version, in the paper's order (Fig. 1: train, test, look, decide, edit).

    The comparison comes right after training, for a version made by an edit (its parent is
    the version it was edited from); a first version has nothing to compare with.
    """
    version = v.version
    seen = visited(v)
    vid = v.version_id
    parent = version["parent"] if version else None
    looked = {step: bool(pages & seen) for step, pages in LOOKED.items()}
    origins = v.state.get("selection_origin", {}).get(version["digest"], {}) if version else {}
    user_choice = "user" in origins.values()  # a selection changed by the user (see ui.aom.selection)
    edited = version is not None and any(r["parent"] == vid for r in v.versions.values())
    steps = [Step("train", "Train", MODEL_DATA, v.model is not None, "train a model or load its weights",
                  "Model & data")]
    if parent is not None:
        steps.append(Step("compare", "Compare", VERSIONS, looked["compare"],
                          f"compare v{vid} with v{parent}, then keep it or revert", f"compare v{vid} with v{parent}"))
    steps += [
        Step("maps", "Maps", COMPUTE_MAPS, bool(v.maps_info), f"compute the maps of v{vid}", "Compute maps"),
        Step("explore", "Explore", EXPLORE, looked["explore"], "look at the AOM, ODM and CSM of a layer", "Explore"),
        Step("select", "Select", SELECT, looked["select"] or user_choice, "choose the kernels to keep",
             "Select kernels"),
        Step("edit", "Edit", EDIT, edited, "remove, widen or insert kernels, then retrain", "Edit & retrain"),
    ]
    return steps


def next_step(steps: list[Step]) -> Step | None:
    """The first step not done, or None when the version's loop is complete."""
    return next((s for s in steps if not s.done), None)


def _page_key(step: Step) -> str:
    return step.page.rsplit("/", 1)[-1].removesuffix(".py")


def _steps_here(steps: list[Step], url_path: str) -> list[Step]:
    return [s for s in steps if url_path == _page_key(s) or url_path in LOOKED.get(s.key, set())]


def loop_bar(v: View, url_path: str) -> None:
    """Above a page of the loop: its steps for the current version (done ones ticked, the next one
    bold) and a link to the next step, or what to do here when the next step is this page."""
    if url_path not in LOOP_PAGES or v.ws.read_only:
        return
    steps = loop_steps(v)
    step = next_step(steps)
    line = " → ".join(f"✓ {s.name}" if s.done else (f"**{s.name}**" if s is step else s.name) for s in steps)
    left, right = st.columns([3, 2], vertical_alignment="center")
    left.caption(f"The loop of v{v.version_id} · {line}" if v.version is not None else f"The loop · {line}")
    if step is None:
        children = ", ".join(f"v{i}" for i, r in v.versions.items() if r["parent"] == v.version_id)
        right.caption(f"Done for v{v.version_id}: its edit made {children} (open it on Versions), or stop here.")
    elif url_path == _page_key(step):
        right.caption(f"Here: {step.todo}.")
    else:
        right.page_link(step.page, label=f"Next: {step.label}", help=step.todo[:1].upper() + step.todo[1:] + ".",
                        icon=":material/arrow_forward:")


def next_step_link(v: View, url_path: str) -> None:
    """Under a page of the loop whose step is done: a link to the next step (none elsewhere)."""
    steps = loop_steps(v)
    step = next_step(steps)
    here = _steps_here(steps, url_path)
    if step is None or not here or not all(s.done for s in here) or v.ws.read_only:
        return
    st.divider()
    st.page_link(step.page, label=f"Next step: {step.todo}", icon=":material/arrow_forward:")
