"""The one place a workspace is created: a dataset (and how its images are read) chosen on Workspaces."""

import streamlit as st

import aomcore
from aomcore.base import limits
from aomcore.base.policy import current_policy
from ui import cached, views
from ui.state import flash, new_workspace, reported, switch_to

KINDS = ["digits", "mnist", "fashion-mnist", "cifar10", "npz upload", "image folder"]


def new_workspace_form(data_root: str = "") -> None:
    """Pick a dataset and its preprocessing, check both splits, then create a workspace for it and
    open it on Model & data with a message saying so. Nothing is created when a split cannot be read:
    the error says what was expected and found, and the form keeps what was typed."""
    c1, c2 = st.columns([1, 2])
    kind = c1.selectbox("Dataset", KINDS, key="dataset_kind",
                        help="digits: scikit-learn's 8×8 digits, always available offline.")
    root = ""
    if kind in ("mnist", "fashion-mnist", "cifar10"):
        root = c2.text_input("Data root (torchvision layout)", data_root, key="data_root",
                             help="Folder holding MNIST/raw, FashionMNIST/raw or cifar-10-batches-py.")
    spec = kind
    if kind == "npz upload":
        upload = c2.file_uploader("NumPy archive with x (N,H,W) or (N,C,H,W) and y (N,)", type=["npz"],
                                  key="npz_upload")
        spec = None
        if upload:
            with reported():
                spec = f"npz:{views.save_upload(upload.getvalue(), upload.name, '.npz')}"
    elif kind == "image folder":
        folder = c2.text_input("Folder with one sub-folder per class (optionally train/ and test/)",
                               key="image_folder")
        spec = f"imagefolder:{folder}" if folder else None
    with st.expander("How the images are read (optional)", expanded=kind == "image folder"):
        transform = st.text_input(
            "Transform (torchvision v2 steps on each image, before scaling)", key="prep_transform",
            placeholder="Resize(40), CenterCrop(32)   or   torchvision:ResNet18_Weights.IMAGENET1K_V1",
            help="Resize, CenterCrop, Pad, Grayscale with literal arguments; images of many sizes need a Resize and "
                 "a CenterCrop. A torchvision weights preset is its resize, crop, mean and std.")
        p1, p2, p3, p4, p5 = st.columns(5)
        mean = p1.text_input("mean (per channel, comma-separated)", key="prep_mean")
        std = p2.text_input("std", key="prep_std")
        channels = p3.number_input("repeat to channels", 0, limits.CHANNELS_MAX, 0, help="0 = keep",
                                   key="prep_channels")
        resize = p4.number_input("resize to N×N", 0, limits.RESIZE_MAX, 0, help="0 = keep", key="prep_resize")
        per_class = p5.number_input("images per class", 0, limits.PER_CLASS_MAX, 0, key="prep_per_class",
                                    help="0 = all (the paper's maps). N = a quick look at a large folder: a "
                                         "stratified sample of at most N images per class of each split, the same "
                                         "every time.")
        skip = kind == "image folder" and st.checkbox(
            "Skip unreadable images", key="prep_skip_unreadable",
            help="Decode every image once when the folder is loaded and leave out the files that do not decode "
                 "(zero-byte, truncated, not an image): they are named on Model & data and left out of every "
                 "count. Without it, such a file stops the load with its path.")
    if st.button("Create the workspace", type="primary", disabled=spec is None, key="use_dataset"):
        with reported():
            policy = current_policy()
            if root:
                policy.check_data_path(root)
            if kind == "image folder":
                policy.check_data_path(spec.partition(":")[2])
            prep = aomcore.Preprocessing(views.numbers(mean, "mean"), views.numbers(std, "std"), channels or None,
                                         resize or None, transform or None, per_class or None, skip)
            key = prep.key()
            train = cached.dataset(spec, "train", root or None, key)  # both splits read before anything is made
            test = cached.dataset(spec, "test", root or None, key)
            ws = new_workspace(spec, root or None, prep, name=kind)
            switch_to(ws)
            flash(f"Created the workspace **{views.plain(ws.name)}**: {len(train):,} train and {len(test):,} test "
                  f"images, {train.num_classes} classes, input {train.input_shape}. Next: train or load a model.")
            st.switch_page("app_pages/workspace/model_data.py")
