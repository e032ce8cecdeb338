"""`convcli.blas.limit_this_thread`: one BLAS thread for the calling thread alone."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from convcli import blas


def _numpy_uses_openblas() -> bool:
    config = np.show_config(mode="dicts")
    name = str(config.get("Build Dependencies", {}).get("blas", {}).get("name", ""))
    return "openblas" in name.lower()


@pytest.mark.skipif(not _numpy_uses_openblas(), reason="numpy is not built on OpenBLAS")
def test_openblas_s_per_thread_setter_is_found_and_products_stay_right() -> None:
    rng = np.random.default_rng(0)
    a = rng.random((300, 200))
    b = rng.random((200, 100))
    expected = np.einsum("ik,kj->ij", a, b)  # not BLAS
    results: list[bool] = []

    def one_thread() -> None:
        results.append(blas.limit_this_thread(1))
        results.append(bool(np.allclose(a @ b, expected)))

    worker = threading.Thread(target=one_thread)
    worker.start()
    worker.join()
    assert results == [True, True]
    assert np.allclose(a @ b, expected)  # this thread's BLAS is untouched


def test_without_openblas_it_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(blas, "_setter", lambda: None)
    assert blas.limit_this_thread(1) is False
