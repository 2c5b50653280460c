"""The demo's output folder: refused when it holds an earlier demo, written to atomically."""

from __future__ import annotations

import shutil
from pathlib import Path

from sciconv._atomic import atomic_output
from sciconv.errors import OutputExistsError

_OUTPUTS = ("report.md", "metrics.json", "models", "predictions", "plots")


def prepare_out(out: Path, *, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise OutputExistsError("--out must be a folder; a file of that name exists", path=out)
    existing = [name for name in _OUTPUTS if (out / name).exists()]
    if existing and not overwrite:
        raise OutputExistsError(
            f"folder already holds demo outputs ({', '.join(existing)}); pass overwrite=True "
            "to replace them, or choose another output folder",
            path=out,
        )
    runs = out / "runs"
    if runs.exists() and overwrite:  # start training from scratch, never resume an old demo
        for name in ("galaxies", "cells", "sky"):
            shutil.rmtree(runs / name, ignore_errors=True)
    for sub in ("models", "predictions", "plots", "runs"):
        (out / sub).mkdir(parents=True, exist_ok=True)


class Writer:
    """Writes the demo's files atomically, remembering what it wrote."""

    def __init__(self, out: Path, overwrite: bool):
        self.out = out
        self.overwrite = overwrite
        self.files: list[Path] = []

    def figure(self, fig, name: str) -> str:
        path = self.out / "plots" / name
        with atomic_output(path, overwrite=self.overwrite) as tmp:
            fig.savefig(tmp, dpi=90)
        self.files.append(path)
        return f"plots/{name}"

    def model(self, model, name: str) -> Path:
        path = self.out / "models" / name
        with atomic_output(path, overwrite=self.overwrite) as tmp:
            model.save(tmp)
        self.files.append(path)
        return path

    def products(self, stem: str, **products) -> dict[str, Path]:
        """Prediction products in ``predictions/`` (:func:`sciconv.postprocess.write_products`)."""
        from sciconv import postprocess

        paths = postprocess.write_products(
            self.out / "predictions", stem=stem, overwrite=self.overwrite, **products
        )
        self.files.extend(paths.values())
        return paths

    def catalog(self, table, name: str) -> Path:
        from sciconv import postprocess

        path = self.out / "predictions" / name
        postprocess.write_catalog(table, path, overwrite=self.overwrite)
        self.files.append(path)
        return path

    def text(self, name: str, text: str) -> Path:
        path = self.out / name
        with atomic_output(path, overwrite=self.overwrite) as tmp:
            tmp.write_text(text, encoding="utf-8")  # Markdown, JSON: UTF-8 anywhere
        self.files.append(path)
        return path
