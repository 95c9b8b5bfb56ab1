"""Tables as the pages draw them: each column one number format on every row."""

from __future__ import annotations

import pandas as pd
import streamlit as st


def table(df: pd.DataFrame, percent: dict[str, str | None] | None = None, decimals: int = 2,
          column_config: dict | None = None, **kwargs):
    """``st.dataframe(df)`` with the fractions in columns ``percent`` (column → label, None: the column's
    name) shown as percentages with ``decimals`` decimals on every row: Streamlit's own ``"percent"``
    format drops trailing zeros (97.8% beside 98.78%, 0% beside 60.31%). The values are scaled ×100
    for the display only; ``df`` is not changed. Other ``kwargs`` go to ``st.dataframe``."""
    config = dict(column_config or {})
    if percent:
        df = df.assign(**{c: 100 * df[c] for c in percent if c in df.columns})
        config.update({c: st.column_config.NumberColumn(label, format=f"%.{decimals}f%%")
                       for c, label in percent.items()})
    return st.dataframe(df, column_config=config, **kwargs)
