"""Model & data: choose a dataset and a model; see its layers, accuracy and examples."""

import pandas as pd
import streamlit as st

import aomcore
from aomcore.policy import current_policy
from ui import cached, views
from ui.state import reported, test_accuracy, workspace

ws = workspace()
st.title("Model & data")
st.caption("Pick the labelled dataset and the trained model to analyse. The maps of the paper are computed "
           "on this pair in **Compute maps**.")

# --- dataset ----------------------------------------------------------------------------
st.subheader("Dataset")
choices = ["digits", "mnist", "fashion-mnist", "cifar10", "npz upload", "image folder"]
current = ws.dataset if ws.dataset in choices else ("npz upload" if ws.dataset.startswith("npz:") else "image folder")
c1, c2 = st.columns([1, 2])
kind = c1.selectbox("Dataset", choices, index=choices.index(current), key="dataset_kind",
                    help="digits: scikit-learn's 8×8 digits, always available offline.")
root = c2.text_input("Data root (torchvision layout)", ws.data_root or "", key="data_root",
                     help="Folder holding MNIST/raw, FashionMNIST/raw or cifar-10-batches-py.")
spec = kind
if kind == "npz upload":
    upload = st.file_uploader("NumPy archive with x (N,H,W) or (N,C,H,W) and y (N,)", type=["npz"],
                              key="npz_upload")
    spec = None
    if upload:
        with reported():
            spec = f"npz:{views.save_upload(upload.getvalue(), upload.name, '.npz')}"
elif kind == "image folder":
    folder = st.text_input("Folder with one sub-folder per class (optionally train/ and test/)", key="image_folder")
    spec = f"imagefolder:{folder}" if folder else None
with st.expander("Preprocessing (recorded with every result)"):
    p1, p2, p3, p4 = st.columns(4)
    mean = p1.text_input("mean (per channel, comma-separated)", ",".join(map(str, ws.prep[0] or [])), key="prep_mean")
    std = p2.text_input("std", ",".join(map(str, ws.prep[1] or [])), key="prep_std")
    channels = p3.number_input("repeat to channels", 0, 4, ws.prep[2] or 0, help="0 = keep", key="prep_channels")
    resize = p4.number_input("resize to N×N", 0, 512, ws.prep[3] or 0, help="0 = keep", key="prep_resize")
if st.button("Use this dataset", type="primary", disabled=spec is None, key="use_dataset"):
    with reported():
        policy = current_policy()
        if kind in ("mnist", "fashion-mnist", "cifar10") and root:
            policy.check_data_path(root)
        if kind == "image folder":
            policy.check_data_path(spec.partition(":")[2])
        prep = (views.numbers(mean, "mean"), views.numbers(std, "std"), channels or None, resize or None)
        aomcore.Preprocessing(*prep)
        cached.dataset(spec, "train", root or None, prep)  # validate both splits before switching
        cached.dataset(spec, "test", root or None, prep)
        ws.set_dataset(spec, root or None, prep)
        st.rerun()

train_set, test_set = ws.split("train"), ws.split("test")
st.caption(f"**{ws.dataset}** · {len(train_set):,} train / {len(test_set):,} test images · "
           f"{train_set.num_classes} classes · input {train_set.input_shape}")

# --- model ------------------------------------------------------------------------------
st.subheader("Model")
zoo_default = aomcore.ZOO_FOR_DATASET.get(ws.dataset, "paper_mnist")
source = st.radio("Source", ["Train a zoo model here", "Load weights"], horizontal=True, key="model_source")
if source == "Train a zoo model here":
    c1, c2, c3 = st.columns(3)
    names = list(aomcore.ZOO)
    arch = c1.selectbox("Architecture", names, index=names.index(zoo_default), format_func=lambda n: f"zoo:{n}")
    recipe = aomcore.default_train_config(ws.dataset)
    epochs = c2.number_input("Epochs", 1, 200, recipe.epochs)
    lr = c3.number_input("Learning rate", 1e-5, 1.0, recipe.lr, format="%.4f")
    if st.button("Train", type="primary", key="train"):
        bar = st.progress(0.0, text="Training…")
        with reported():
            config = aomcore.TrainConfig(epochs=int(epochs), lr=float(lr), batch_size=recipe.batch_size)
            ws.set_model(aomcore.pretrained_zoo_model(
                f"zoo:{arch}", train_set, config,
                progress=lambda m: bar.progress(m["step"] / m["steps"],
                                                text=f"epoch {m['epoch']} · loss {m['loss']:.3f}")))
            st.rerun()
else:
    c1, c2 = st.columns([1, 2])
    arch = c1.text_input("Architecture", f"zoo:{zoo_default}", key="arch",
                         help="zoo:NAME, torchvision:NAME (e.g. torchvision:resnet18) or FILE.py:CLASS")
    weights = c2.file_uploader("Weights: a state_dict (.pt, loaded with weights_only=True) or .safetensors",
                               type=["pt", "pth", "safetensors"], key="weights_upload")
    if st.button("Load", type="primary", disabled=weights is None, key="load_weights"):
        with reported():
            current_policy().check_architecture(arch.strip())
            data = views.check_upload(weights.getvalue(), weights.name, "a state_dict file")
            loaded = aomcore.load_model(arch.strip(), data, train_set.num_classes, train_set.input_shape,
                                        weights_name=weights.name)
            aomcore.check_model_fits(loaded.model, train_set)
            ws.set_model(loaded)
            st.rerun()

if ws.model is None:
    st.info("No model yet: train a zoo model or load weights above.")
    st.stop()

# --- what the model is ------------------------------------------------------------------
st.subheader("Layers")
rows = cached.layer_table(ws.model.digest, train_set.input_shape, False, ws.model)
st.dataframe(pd.DataFrame(rows)[["name", "type", "kind", "output_shape", "kernels", "params", "tap"]],
             hide_index=True, width="stretch",
             column_config={"tap": st.column_config.TextColumn("maps read at",
                                                               help="the activation the next layer sees")})

acc = test_accuracy(ws)
st.subheader(f"Test accuracy: {acc['accuracy']:.2%}")
st.altair_chart(views.per_class_accuracy_chart(test_set.classes, acc["per_class"]), width="stretch")

st.subheader("Examples per class")
images, labels = test_set.examples(per_class=4)
st.image(views.examples_strip(images, labels, test_set.classes, 4), clamp=True,
         caption="columns, left to right: " + " · ".join(test_set.classes), width=min(900, 90 * len(test_set.classes)))
