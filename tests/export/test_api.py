from __future__ import annotations

import medlens.export


def test_public_names_exist_and_are_sorted() -> None:
    assert medlens.export.__all__ == sorted(medlens.export.__all__)
    for name in medlens.export.__all__:
        assert hasattr(medlens.export, name), name
