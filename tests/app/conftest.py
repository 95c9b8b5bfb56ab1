import pytest
import streamlit as st


@pytest.fixture(autouse=True)
def _clear_streamlit_caches():
    """All AppTests share one process and session id: start each from empty caches."""
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
