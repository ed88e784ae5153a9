"""Asset hashes follow what goes into the asset, wherever its files come from."""

from __future__ import annotations

from pathlib import Path

from infra.bundling import CONFIG_FILE_NAME, content_hash


def test_a_config_hashes_by_its_name_in_the_asset_and_its_bytes_not_its_location(tmp_path: Path) -> None:
    # Given the same config in two places, and a changed one
    first, second, changed = (tmp_path / d / "team.yaml" for d in ("a", "b", "c"))
    for path, text in ((first, "rules: []\n"), (second, "rules: []\n"), (changed, "rules: [x]\n")):
        path.parent.mkdir()
        path.write_text(text)
    # When each is hashed as the asset's config file
    hashes = [content_hash(["lambda"], [(path, CONFIG_FILE_NAME)]) for path in (first, second, changed)]
    # Then the location does not matter and the content does
    assert hashes[0] == hashes[1] != hashes[2]


def test_a_directory_hashes_the_names_inside_it(tmp_path: Path) -> None:
    # Given two trees with the same bytes under different file names
    for tree, name in (("x", "one.py"), ("y", "two.py")):
        (tmp_path / tree).mkdir()
        (tmp_path / tree / name).write_text("pass\n")
    # When hashed as the same package, Then they differ
    assert content_hash([], [(tmp_path / "x", "pkg")]) != content_hash([], [(tmp_path / "y", "pkg")])
