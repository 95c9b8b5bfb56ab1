"""Look and decide: Layer overview → Edit & retrain, the new Explore tabs, a grid pick, the cut and
the selection in step, two versions compared."""

from aomcore import KernelOrdering, Lineage, kernel_flags, load_cached_maps, suggest_keep
from tests.app.helpers import app, texts, wait_jobs
from ui.aom.overview import compare_table, edit_summary


def _maps(at):
    at.switch_page("app_pages/aom/compute_maps.py").run()
    at.button(key="compute").click().run()
    return wait_jobs(at, "app_pages/aom/compute_maps.py")


def test_overview_rows_and_a_prefilled_edit_reaches_edit_retrain(trained):
    at = app()
    at.switch_page("app_pages/aom/layer_overview.py").run()
    assert not at.exception and "compute them" in at.info[0].value  # empty state
    at = _maps(at)
    at.switch_page("app_pages/aom/layer_overview.py").run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert list(table["layer"]) == ["conv1", "conv2"] and list(table["kernels"]) == [8, 16]
    assert "neighbourhood hit" not in table.columns  # no projection in this workspace
    trained.record_result({"kind": "embed", "key": "e1", "digest": trained.version(0)["digest"], "layer": "conv2",
                           "neighborhood_hit": 0.875})  # what a projection of conv2's activations records
    at.run()
    hits = at.dataframe[0].value["neighbourhood hit"]
    assert hits.isna().tolist() == [True, False] and hits.iloc[1] == 0.875
    assert "Task 1 — Find redundant or ineffective kernels" in texts(at)
    button = next(b for b in at.button if b.key.startswith("edit_conv1_"))
    proposal = next(m.value for m in at.markdown if "Proposed edit: Remove kernels" in m.value and "conv1" in m.value)
    button.click().run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Edit & retrain"
    assert "Pre-filled from **Layer overview**" in at.info[0].value
    assert at.selectbox(key="edit_layer").value == "conv1"
    assert at.radio(key="edit_kind").value == "Remove kernels"
    chosen = at.multiselect[0].value
    assert chosen and edit_summary({"kind": "remove", "layer": "conv1", "kernels": chosen}) in proposal
    assert at.main.metric[0].value == f"8 → {8 - len(chosen)}"


def test_explore_tabs_grid_pick_and_the_cut_in_step(trained):
    at = _maps(app())
    at.switch_page("app_pages/aom/explore.py").run()
    assert not at.exception, at.exception
    assert [t.label for t in at.tabs] == ["AOM", "ODM", "CSM", "Class difference", "Multi-class kernels",
                                         "Inspect a kernel"]
    assert len(at.dataframe[0].value) == 10  # the ten least separated class pairs
    at.toggle(key="aom_hover").set_value(True).run()
    assert not at.exception, at.exception
    ws, digest = trained, trained.version(0)["digest"]
    kept = ws.selection(digest)["conv1"]  # Explore set the suggestion at the cut
    at.selectbox(key="kernel_conv1_None").set_value(kept[0]).run()  # the kernel to inspect
    assert at.button(key="pick").label == f"Drop k{kept[0]}"
    at.button(key="pick").click().run()
    assert not at.exception, at.exception
    assert ws.selection(digest)["conv1"] == [k for k in kept if k != kept[0]]  # the pick reached the selection

    at.switch_page("app_pages/aom/select_kernels.py").run()
    assert not at.exception, at.exception
    assert at.checkbox(key="keep_edits_conv1").value  # the user's edit is kept when the cut moves
    at.slider[0].set_value(8).run()
    assert ws.selection(digest)["conv1"] == [k for k in kept if k != kept[0]]
    at.checkbox(key="keep_edits_conv1").uncheck().run()  # let it go: the suggestion at 8 groups
    assert not at.exception, at.exception
    m = load_cached_maps(ws.results_cache, ws.results("maps", digest)[-1]["key"])["conv1"]
    expected = suggest_keep(m.selectivity, KernelOrdering(n_groups=8).fit(m.odm).labels_, kernel_flags(m.aom))
    assert ws.selection(digest)["conv1"] == expected and ws.n_groups("conv1", 0) == 8
    assert at.main.metric[-1].value == f"{len(expected)} of 8"
    assert at.main.metric[-1].delta == (f"{8 - len(expected)} dropped" if len(expected) < 8 else "")
    assert sorted(at.dataframe[0].value["name"]) == sorted(f"k{k}" for k in range(8))


def test_versions_compared_side_by_side(trained):
    trained.add_version(trained.load_version(0), parent=0, edits=[], metrics=trained.version(0)["metrics"],
                        note="a copy", arch="zoo:digits_net", num_classes=10, input_shape=(1, 8, 8))
    at = app()
    at.switch_page("app_pages/aom/versions.py").run()
    assert not at.exception, at.exception
    table = at.dataframe[1].value
    assert list(table.columns) == ["", "A: v0", "B: v1", "change"]
    assert table.iloc[0].tolist()[0] == "test accuracy" and table.iloc[0]["change"] == "+0.00 pt"
    assert "kernels in conv1" in list(table[""])
    assert at.button(key="maps_A_0") and at.button(key="maps_B_1")
    at.button(key="maps_A_0").click().run()  # no maps for v0 yet: compute them as a job
    at = wait_jobs(at, "app_pages/aom/versions.py")
    assert not at.exception, at.exception
    # v1 is a copy of v0 (same weights digest): both grids are now shown, no compute button is left
    assert len(at.get("image")) == 2 and not [b for b in at.button if b.key and b.key.startswith("maps_")]


def test_compare_table_names_kernels_by_kinship():
    """Two branches of v0 that each widened conv1 both call their new kernel k8+, but they are two
    kernels: the table says each branch's is new; versions trained apart share no kernel."""
    def record(i, k):
        return {"id": i, "metrics": {"accuracy": 0.9, "params": 10, "flops": 10, "kernels": {"conv1": k}}}

    base = Lineage.identity({"conv1": 8})
    widened = base.grown("conv1", 8, 1)
    pruned = widened.dropped("conv1", [1])
    line = compare_table(record(1, 9), record(2, 8), widened, pruned, relation="line")
    assert line.iloc[3]["change"] == "-1 (gone: k1)"
    branches = compare_table(record(1, 9), record(2, 8), widened, pruned, relation="branches")
    assert branches.iloc[3]["change"] == "-1 (gone: k1, k8+; new: k8+)"
    apart = compare_table(record(1, 9), record(2, 8), widened, pruned, relation="unrelated")
    assert "no kernel in common" in apart.iloc[3]["change"]
    # runs of original kernels print as ranges, as the edit list does (the cell is not cut mid-list)
    many = widened.dropped("conv1", [0, 2, 3, 4, 5, 8])
    assert compare_table(record(1, 9), record(2, 3), widened, many).iloc[3]["change"] == "-6 (gone: k0, k2–k5, k8+)"


def test_explore_draws_a_chosen_set_of_classes_when_there_are_more_than_twenty(home, tmp_path):
    """#21: a 25-class dataset. The AOM and CSM grids draw 20 classes, chosen in class-difference order
    (alike classes side by side); the user picks others; the grid image has one column per chosen class."""
    import numpy as np

    from aomcore import Workspace, map_grid_image, run_inline
    from ui import cached

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "many.npz", x=rng.integers(0, 256, (25 * 6, 8, 8), dtype=np.uint8),
             y=np.repeat(np.arange(25), 6))
    ws = Workspace.create(name="25 classes", dataset=f"npz:{tmp_path / 'many.npz'}")
    run_inline(ws, "train", {"arch": "zoo:digits_net", "snapshots": 0,
                             "config": {"epochs": 1, "lr": 0.003, "batch_size": 64, "optimizer": "adam", "seed": 0}})
    run_inline(ws, "maps", {"version": 0, "layers": ["conv1"], "split": "train", "threshold": 0.0})
    key = ws.results("maps")[-1]["key"]
    m = load_cached_maps(ws.results_cache, key)["conv1"]
    at = app()
    at.switch_page("app_pages/aom/explore.py").run()
    assert not at.exception, at.exception
    chooser = at.multiselect(key="grid_classes_conv1")
    by_difference = KernelOrdering(n_groups=1).fit(m.class_difference).order_.tolist()
    assert chooser.options == [m.classes[c] for c in by_difference] and len(chooser.value) == 20
    assert chooser.value == by_difference[:20]
    chooser.set_value([3, 7, 11]).run()
    assert not at.exception, at.exception
    assert at.multiselect(key="grid_classes_conv1").value == [3, 7, 11] and at.get("image")
    # what the grid draws: the three classes' columns, rows and flags as with every class
    drawn = cached.grid_image(key, "conv1", 4, "aom", "occurrence", 28, m, columns=(3, 7, 11))
    ordering = KernelOrdering(n_groups=4).fit(m.odm)
    expected = map_grid_image(m.aom[:, [3, 7, 11]], "occurrence", ordering.order_, ordering.labels_,
                              [m.classes[c] for c in (3, 7, 11)], kernel_flags(m.aom), cell=28)
    assert drawn.size == expected.size and np.array_equal(np.asarray(drawn), np.asarray(expected))
    assert drawn.size[0] < cached.grid_image(key, "conv1", 4, "aom", "occurrence", 28, m).size[0]
