"""Explore: AOM, ODM and CSM grids of one layer in cluster order, class difference, multi-class kernels."""

import streamlit as st

import aomcore
from ui import cached, views
from ui.aom import overview as views_overview
from ui.aom import selection as selection
from ui.state import focus_on, layer_in_focus, require_maps, view

v = view()
st.title("Explore")
require_maps(v)

c1, c2 = st.columns([1, 2])
layer = c1.selectbox("Layer", list(v.maps), index=layer_in_focus(list(v.maps)))
focus_on(layer)
m = v.maps[layer]
k, digest, key = m.num_kernels, v.version["digest"], v.maps_info["key"]
saved = min(k, v.ws.n_groups(layer, aomcore.default_n_groups(m.odm, m.aom)))
n_groups = c2.slider("Kernel groups (cut of the clustering tree)", 1, k, saved, key=f"groups_{layer}_{saved}",
                     help="Rows are ordered by agglomerative clustering of the AOM rows (average linkage on the "
                          "ODM, optimal leaf ordering); red boxes outline the groups. The default cut joins kernels "
                          f"whose AOMs differ by less than {aomcore.default_cut_distance(m.aom):.3g} on average (ODM, "
                          "eq. 2): a tenth of what two kernels of the layer's mean occurrence that never fire together "
                          "differ by. "
                          "The cut is shared with Select kernels and kept in the workspace.")
if n_groups != saved:
    v.ws.set_n_groups(layer, n_groups)
lv = cached.views(key, layer, n_groups, m)
kept, _ = selection.sync(v.ws, digest, layer, n_groups, lv)
dead, always = int(lv["flags"]["dead"].sum()), int(lv["flags"]["always_on"].sum())
names = v.kernel_names(layer, k)
renamed = tuple(names) if aomcore.renamed(names) else None  # after an edit: names of the first version
st.caption(f"{k} kernels × {len(m.classes)} classes × {m.counts.shape[2]}×{m.counts.shape[3]} positions, read at "
           f"`{m.tap}` · {dead} dead (black mark) · {always} always on (orange mark) · "
           f"{lv['groups'].max() + 1} groups · {len(kept)} kept on Select kernels"
           + (" · kernels keep their names from the first version (`k5` is its kernel 5 wherever it sits now; "
              "`+`: added by an edit)" if renamed else ""))

GROUP_ROWS_FROM = 64  # kernels above which the grids open one row per group
MAX_COLUMNS = 20  # classes above which the grids draw a chosen subset (#21: a 100-class grid is 5,600 px wide)
columns = None
if len(m.classes) > MAX_COLUMNS:
    by_difference = [int(c) for c in aomcore.KernelOrdering(n_groups=1).fit(m.class_difference).order_]
    columns = tuple(st.multiselect(
        f"Classes in the AOM and CSM grids ({len(m.classes)} in all)", by_difference, by_difference[:MAX_COLUMNS],
        format_func=m.classes.__getitem__, key=f"grid_classes_{layer}",
        help="Listed in class-difference order (classes whose AOMs are alike side by side, as on the Class "
             f"difference tab); the first {MAX_COLUMNS} are shown until you choose. Rows, groups and flags "
             "stay those of every class.")) or tuple(by_difference[:MAX_COLUMNS])
tabs = st.tabs(["AOM", "ODM", "CSM", "Class difference", "Multi-class kernels", "Inspect a kernel"])
GRIDS = [(tabs[0], "aom", views.AOM_COLORMAPS, "Fraction of each class's images whose activation at each position "
          "is > threshold (eq. 1)."),
         (tabs[2], "csm", views.CSM_COLORMAPS, "Class selectivity (eq. 3): positive where the position fires more "
          "for this class than for the others, negative where it fires less (paper's map: cyan → purple for 0 → 1, "
          "yellow → red for 0 → −1).")]
for tab, which, colormaps, caption in GRIDS:
    with tab:
        st.caption(caption + " Red boxes: groups at the cut. Colour bar under the grid.")
        a, b, c, d = st.columns([2, 2, 2, 1.5])
        cmap = colormaps[a.selectbox("Colormap", list(colormaps), key=f"{which}_cmap")]
        zoom = b.slider("Zoom (pixels per map)", 28, 224, 56, step=14, key=f"{which}_zoom")
        rows = c.radio("Rows", ["each kernel", "each group"], index=int(k > GROUP_ROWS_FROM), horizontal=True,
                       key=f"{which}_rows_{k > GROUP_ROWS_FROM}",
                       help="Each group: one row per group of the cut, its kernels' mean map (the number of kernels "
                            "in brackets); pick a group below to see its kernels.")
        hover = d.toggle("Hover values", key=f"{which}_hover", help="An interactive grid with the value of every "
                         "position (averaged over blocks when the layer is large).")
        if hover:
            values = getattr(m, which) if columns is None else getattr(m, which)[:, list(columns)]
            shown = m.classes if columns is None else [m.classes[c] for c in columns]
            chart, f = views.grid_chart(values, lv["order"], shown, cmap, names=names)
            st.altair_chart(chart, width="content")
            if f > 1:
                st.caption(f"Each cell is the mean of a {f}×{f} block of positions; the image below is exact.")
        if rows == "each kernel":
            st.image(cached.grid_image(key, layer, n_groups, which, cmap, zoom, m, names=renamed, columns=columns),
                     width="content")
            continue
        st.image(cached.grid_image(key, layer, n_groups, which, cmap, zoom, m, "groups", columns=columns),
                 width="content")
        members = lv["members"]
        g = st.selectbox("Expand a group", range(len(members)), key=f"{which}_group",
                         format_func=lambda i, members=members: f"g{i + 1}: {len(members[i])} kernels")
        st.image(cached.grid_image(key, layer, n_groups, which, cmap, zoom, m, g, renamed, columns=columns),
                 width="content")
with tabs[1]:
    st.caption("Mean absolute difference between two kernels' AOMs (eq. 2), in the grid's order with its groups "
               "boxed in red: dark blue = similar kernels (candidates for redundancy), white = midway, "
               "dark red = the most different pair.")
    if k <= 300:
        st.vega_lite_chart(cached.chart_spec(views.odm_heatmap, m.odm, lv["order"], lv["groups"], names),
                           width="content")
    else:
        st.image(lv["odm_image"], width="content")
with tabs[3]:
    st.caption("Class difference E (the ODM's dual: mean |ΔAOM| between two classes over every kernel and "
               "position). Classes with small E produce similar AOMs in every kernel: the layer may be too small "
               "to separate them (Task 2). Rows in cluster order.")
    order = aomcore.KernelOrdering(n_groups=1).fit(m.class_difference).order_
    a, b = st.columns([3, 2])
    a.vega_lite_chart(cached.chart_spec(views_overview.class_difference_chart, m.class_difference, order, m.classes),
                      width="content")
    pairs = aomcore.least_separated_pairs(m.class_difference)
    median = sorted(e for *_, e in pairs)[len(pairs) // 2]
    b.markdown("**Least separated pairs**")
    b.dataframe(views_overview.pairs_table(pairs[:10], m.classes, median), hide_index=True,
                column_config={"E": st.column_config.NumberColumn(format="%.4f"),
                               "E / median": st.column_config.NumberColumn(format="%.2f")})
with tabs[4]:
    level = st.slider("Strong occurrence: mean over positions above", 0.05, 0.95, aomcore.MULTI_CLASS_LEVEL, 0.05)
    per_kernel = aomcore.classes_per_kernel(m.aom, level)
    st.caption(f"{aomcore.multi_class_share(per_kernel):.0%} of the kernels have strong occurrence for two or more "
               "classes (orange). Many such kernels in the last hidden layer: the model may need more layers "
               "(Task 3).")
    strong = m.aom.mean(axis=(2, 3)) > level
    st.vega_lite_chart(cached.chart_spec(views_overview.classes_per_kernel_chart, per_kernel, lv["order"], strong,
                                         m.classes), width="stretch")
with tabs[5]:
    measure = st.radio("Cell value", ["mean occurrence", "mean selectivity"], horizontal=True)
    values, name = ((lv["mean_occurrence"], "occurrence") if measure == "mean occurrence"
                    else (lv["class_selectivity"], "selectivity"))
    st.caption("Click a cell to inspect that kernel and class, then keep or drop the kernel.")
    chart = cached.chart_spec(views.kernel_class_heatmap, values, lv["order"], m.classes, lv["groups"], measure, name,
                              names)
    event = st.vega_lite_chart(chart, on_select="rerun", key=f"cells_{layer}")
    picked = (event.selection.get("cell") or [{}])[0] if event and event.selection else {}
    c1, c2, c3 = st.columns([1, 1, 1])
    order = [int(i) for i in lv["order"]]
    kernel = c1.selectbox("Kernel", order, index=order.index(int(picked.get("kernel", order[0]))),
                          format_func=names.__getitem__, key=f"kernel_{layer}_{picked.get('kernel')}")
    cls = c2.selectbox("Class", list(range(len(m.classes))), format_func=m.classes.__getitem__,
                       index=m.classes.index(picked["class"]) if "class" in picked else 0)
    label = f"Drop {names[kernel]}" if kernel in kept else f"Keep {names[kernel]}"
    if c3.button(label, key="pick", help="Changes the keep/drop selection of Select kernels and Edit & retrain."):
        kept = selection.toggle(v.ws, digest, layer, kernel, kept)
        st.toast(f"{names[kernel]} {'kept' if kernel in kept else 'dropped'}: {len(kept)} of {k} kernels kept")
        st.rerun()
    st.caption(f"{names[kernel]}: group {lv['groups'][kernel] + 1}, "
               f"selectivity s(k) = {lv['selectivity'][kernel]:.3f}, "
               f"{'kept' if kernel in kept else 'dropped'} in the selection")
    a, b = st.columns(2)
    a.altair_chart(views.position_heatmap(m.aom[kernel, cls], "AOM", "occurrence"), width="content")
    b.altair_chart(views.position_heatmap(m.csm[kernel, cls], "CSM", "selectivity"), width="content")
