"""Kernel identity across edits: which kernel of the first version each kernel of an edited model is.

After ``remove`` the survivors of a layer are renumbered 0…K'-1, and a ``widen`` adds kernels
in the middle of a concatenation; a designer following the paper's loop (Garcia et al. 2019,
Fig. 1: edit, retrain, compare) needs the original names to tell which kernels survived.
:class:`Lineage` carries, per conv/FC layer, each kernel's identity: an index below the
layer's ``base`` (its kernel count in the first version) is that original kernel; an index
at or above ``base`` is a kernel added later (by a widening, or every kernel of an inserted
layer), numbered in the order it was added. Names: ``k5`` for original kernel 5 wherever
it now sits, ``k16+`` for the first kernel added to a 16-kernel layer.

Files carry the ``kernel_origin`` form (:meth:`Lineage.origin`): per layer a list with
each kernel's index in the first version, ``null`` for an added kernel.

A lineage is derived from the architecture and the edit list
(:func:`~aomcore.base.editing.trace_edits`), never stored as the truth: it cannot
disagree with the weights it names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Lineage", "aligned_rows", "kernel_list", "kernel_names", "kernel_origin", "kernel_ranges", "kinship",
           "renamed", "shared_names"]


@dataclass(frozen=True)
class Lineage:
    """Each kernel's identity in every conv/FC layer of an edited model.

    Attributes
    ----------
    ids : dict of str to tuple of int
        Per layer (forward order), one identity per kernel in the model's current order:
        ``< base[layer]`` the original kernel of that index, ``>= base[layer]`` an added one.
    base : dict of str to int
        The layer's kernel count in the first version; 0 for a layer inserted by an edit.
    added : dict of str to int
        Kernels ever added to the layer (so a new kernel never reuses a removed one's name).
    """

    ids: dict[str, tuple[int, ...]]
    base: dict[str, int]
    added: dict[str, int] = field(default_factory=dict)

    @classmethod
    def identity(cls, kernels: dict[str, int]) -> Lineage:
        """The lineage of an unedited model: kernel i of each layer is original kernel i."""
        return cls({name: tuple(range(k)) for name, k in kernels.items()}, dict(kernels), {})

    def kernels(self, layer: str) -> int:
        return len(self.ids[layer])

    def origin(self, layer: str) -> list[int | None]:
        """Each kernel's index in the first version, ``None`` for an added kernel: (K,) list."""
        base = self.base[layer]
        return [i if i < base else None for i in self.ids[layer]]

    def names(self, layer: str) -> list[str]:
        """``k5`` for original kernel 5, ``k16+`` for the first kernel added to a 16-kernel layer."""
        base = self.base[layer]
        return [f"k{i}" if i < base else f"k{i}+" for i in self.ids[layer]]

    def to_json(self, changed_only: bool = False) -> dict[str, list[int | None]]:
        """``{layer: kernel_origin}`` for every layer (the form written to files), or only for
        the layers whose kernels an edit removed, added or created (``changed_only``)."""
        return {layer: self.origin(layer) for layer in self.ids
                if not changed_only or self.ids[layer] != tuple(range(self.base[layer]))}

    def dropped(self, layer: str, positions) -> Lineage:
        """This lineage after removing the kernels at ``positions`` (current indices) of ``layer``."""
        gone = {int(p) for p in positions}
        ids = dict(self.ids)
        ids[layer] = tuple(i for p, i in enumerate(self.ids[layer]) if p not in gone)
        return Lineage(ids, self.base, self.added)

    def grown(self, layer: str, at: int, n: int) -> Lineage:
        """This lineage after inserting ``n`` new kernels at current index ``at`` of ``layer``."""
        first = self.base[layer] + self.added.get(layer, 0)
        old = self.ids[layer]
        ids = dict(self.ids)
        ids[layer] = (*old[:at], *range(first, first + n), *old[at:])
        return Lineage(ids, self.base, {**self.added, layer: self.added.get(layer, 0) + n})


def _knows(lineage: Lineage | None, layer: str, k: int) -> bool:
    return lineage is not None and layer in lineage.ids and lineage.kernels(layer) == k


def kernel_names(lineage: Lineage | None, layer: str, k: int) -> list[str]:
    """Display names of ``layer``'s ``k`` kernels: from ``lineage`` when it knows the layer
    with that many kernels, else ``k0 … k{k-1}`` (an unedited model, or maps of another shape)."""
    return lineage.names(layer) if _knows(lineage, layer, k) else [f"k{i}" for i in range(k)]


def kernel_origin(lineage: Lineage | None, layer: str, k: int) -> list[int | None]:
    """``layer``'s ``kernel_origin`` for a file: (k,) original indices, None for added kernels;
    ``[0, …, k-1]`` where ``lineage`` does not know the layer with ``k`` kernels (as :func:`kernel_names`)."""
    return lineage.origin(layer) if _knows(lineage, layer, k) else list(range(k))


def renamed(names: list[str]) -> bool:
    """Whether some kernel's name is not its position's ``k<i>`` (the layer was edited)."""
    return names != [f"k{i}" for i in range(len(names))]


def kernel_ranges(indices) -> str:
    """Kernel indices as sorted ranges: ``[0, 1, 2, 3, 5, 7, 8]`` → ``"0-3,5,7-8"`` (``""`` when empty).

    The form :func:`parse_edit` reads back (``--remove conv1:0-3,5,7-8``) of :mod:`~aomcore.base.editing`.
    """
    values = sorted({int(i) for i in indices})
    parts, start = [], None
    for i, value in enumerate(values):
        if start is None:
            start = value
        if i + 1 == len(values) or values[i + 1] != value + 1:
            parts.append(str(start) if start == value else f"{start}-{value}")
            start = None
    return ",".join(parts)


def kernel_list(names: list[str], indices) -> str:
    """Kernels ``indices`` of a layer whose kernels are called ``names``, for a message or a table
    cell: ranges (``0-3,5``, :func:`kernel_ranges`) while no kernel is :func:`renamed`, else
    their names (``k1, k4, k16+``)."""
    if not renamed(names):
        return kernel_ranges(indices)
    return ", ".join(names[int(i)] for i in sorted({int(i) for i in indices}))


def kinship(parents: dict[int, int | None], a: int, b: int) -> str:
    """How versions ``a`` and ``b`` of one workspace are related, which decides what their kernel
    names share: ``"line"`` (one descends from the other, or they are the same: every name, ``k16+``
    too, is one kernel), ``"branches"`` (a common first version: original names ``k5`` are shared,
    but each branch's added kernels are its own) or ``"unrelated"`` (trained apart: nothing shared).

    ``parents`` maps each version id to its parent's id (None for a first version).
    """
    def chain(v: int) -> list[int]:
        out, seen = [v], {v}
        while parents.get(out[-1]) is not None and parents[out[-1]] not in seen:
            out.append(parents[out[-1]])
            seen.add(out[-1])
        return out

    ca, cb = chain(a), chain(b)
    if a in cb or b in ca:
        return "line"
    return "branches" if ca[-1] == cb[-1] else "unrelated"


def shared_names(names_a, names_b, relation: str = "line") -> set[str]:
    """The kernel names two versions share as one kernel, given their :func:`kinship`: every common
    name on one ``"line"``, the original ones (not ``k16+``) between ``"branches"``, none ``"unrelated"``."""
    if relation == "unrelated":
        return set()
    common = set(names_a) & set(names_b)
    return common if relation == "line" else {n for n in common if not n.endswith("+")}


def aligned_rows(names_a: list[str], order_a, names_b: list[str], order_b, relation: str = "line") -> list[int]:
    """B's kernels in A's display order: the rows of B that hold A's kernels (by name) in the
    order A shows them, then B's other kernels (new, or not matchable) in B's own order.

    Parameters
    ----------
    names_a, names_b : list of str
        Each version's kernel names in the layer (:func:`kernel_names`).
    order_a, order_b : sequence of int
        Each version's display order (e.g. its clustering order).
    relation : {"line", "branches", "unrelated"}
        From :func:`kinship`; which names match is :func:`shared_names`.

    Returns
    -------
    list of int, a permutation of B's kernel positions.
    """
    shared = shared_names(names_a, names_b, relation)
    where = {name: j for j, name in enumerate(names_b)}
    rows = [where[names_a[i]] for i in order_a if names_a[i] in shared]
    taken = set(rows)
    return rows + [int(j) for j in order_b if int(j) not in taken]
