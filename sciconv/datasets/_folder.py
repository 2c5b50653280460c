"""Classification datasets from a folder holding one sub-folder of images per class."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sciconv.datasets._classes import class_order
from sciconv.datasets._images import build_image_datasets
from sciconv.datasets._pipelines import attach
from sciconv.errors import DatasetError
from sciconv.io import list_images
from sciconv.io._common import warn_caller
from sciconv.io._files import check_name_length, find_same_name, user_path
from sciconv.preprocess import NormSpec


def list_folder_images(folder: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Image files (by extension, via sciconv.io) and the other visible files of a folder."""
    images = list_images(folder)
    names = {p.name for p in images}
    junk = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or p.name in names:
            continue
        if p.is_symlink() and not p.exists():
            junk.append((p, "broken link"))
        elif p.is_file():
            junk.append((p, "not an image file"))
        elif p.is_dir():  # its images are not read: say so, or a class silently loses them
            junk.append((p, "a sub-folder: not searched, move its images up"))
    return images, junk


def _unreadable(err: OSError, folder: Path) -> DatasetError:
    """A DatasetError naming the folder or file the operating system refused, and why."""
    where = err.filename if err.filename is not None else folder
    reason = err.strerror or type(err).__name__
    hint = "; check its permissions" if isinstance(err, PermissionError) else ""
    return DatasetError(f"cannot read this folder or file ({reason}){hint}", path=where)


def _scan_class_folders(folder: Path):
    """The class folders of ``folder``, their image paths and labels, and the skipped files."""
    if not folder.is_dir():
        raise DatasetError(
            "not a folder (from_folder expects one sub-folder per class)", path=folder
        )
    found = {
        d.name: d
        for d in folder.iterdir()  # an unzipped archive's __MACOSX is never a class
        if d.is_dir() and not d.name.startswith(".") and d.name != "__MACOSX"
    }
    class_dirs = [found[name] for name in class_order(found)]  # 2 before 10, as in catalogs
    if not class_dirs:
        raise DatasetError(
            "no class sub-folders; from_folder expects one sub-folder of images per class",
            path=folder,
        )
    if len(class_dirs) == 1:  # often the class folder itself, passed instead of its parent
        raise DatasetError(
            f"only one class sub-folder ({class_dirs[0].name!r}); a classifier needs at least "
            "two classes: from_folder expects one sub-folder of images per class",
            path=folder,
        )
    paths: list[str] = []
    labels: list[int] = []
    skipped: list[tuple[str, str]] = []
    for c, d in enumerate(class_dirs):
        images, junk = list_folder_images(d)
        skipped.extend((str(p), why) for p, why in junk)
        if not images:
            raise DatasetError(
                f"class folder {d.name!r} holds no image files"
                + (f" (only {len(junk)} non-image file(s))" if junk else ""),
                path=d,
            )
        paths.extend(str(p) for p in images)
        labels.extend([c] * len(images))
    keep = _once_each(paths, labels, class_dirs)
    return class_dirs, [paths[i] for i in keep], [labels[i] for i in keep], skipped


def _once_each(paths: list[str], labels: list[int], class_dirs) -> list[int]:
    """The indices of the files to use: a file reached twice (a link beside its target) once,
    with a warning; one under two classes is refused (QA: a link and its target fell into the
    training and validation splits, once under two classes)."""
    first: dict[str, int] = {}
    keep = []
    for i, path in enumerate(paths):
        key = os.path.realpath(path)
        j = first.setdefault(key, i)
        if j == i:
            keep.append(i)
        elif labels[j] != labels[i]:
            raise DatasetError(
                f"{path} is the same file as {paths[j]} (a link), under class "
                f"{class_dirs[labels[i]].name!r} and {class_dirs[labels[j]].name!r}: one "
                "image cannot be both; remove one of them",
                path=path,
            )
        else:  # said, not 'skipped' as unreadable (strict=True refused a valid set: review)
            warn_caller(f"{path} is the same file as {paths[j]} (a link): used once", "sciconv")
    return keep


def from_folder(
    path: str | os.PathLike,
    *,
    image_size: int | tuple[int, int] | None = None,
    validation_split: float | None = None,
    batch_size: int = 32,
    shuffle: bool = True,
    seed: int | None = 0,
    augment: bool | dict = False,
    normalize: str | dict | NormSpec | None = "default",
    size_policy: str = "auto",
    cache: str | bool | os.PathLike = "auto",
    strict: bool = False,
):
    """Classification dataset from a folder holding one sub-folder of images per class.

    Class names are the sorted sub-folder names (numerically when all are numbers, as
    :func:`from_catalog` sorts its labels); labels are their indices (int32). FITS, TIFF
    and PNG files may be mixed. Non-image or unreadable files are skipped with one
    :class:`~sciconv.errors.SciconvWarning` that names them (``strict=True``: a
    :class:`~sciconv.errors.DatasetError`).

    Parameters
    ----------
    path : str or path-like
        The folder; each visible sub-folder is a class (at least two).
    image_size : int or (int, int), optional
        Output ``(H, W)``. Default None: the images' own size, which must then be the same for all.
    validation_split : float, optional
        Fraction held out for validation, split per class (stratified) with ``seed``; then
        ``(train, val)`` is returned.
    batch_size : int, optional
        Default 32.
    shuffle : bool, optional
        Shuffle the training split each epoch (seeded). Default True.
    seed : int, optional
        Seed of the split, shuffle, crops and augmentation. Default 0: every call holds out the
        same images (as ``sciconv train`` and :func:`from_arrays`), so a rerun notebook cell
        never moves training images into the validation set. None: a random one, recorded as
        the datasets' ``.seed``.
    augment : bool or dict, optional
        Training split only. True: a random D4 element per image and, with ``size_policy="crop"``
        and larger images, a random crop (instead of the centre crop). A dict adds options of
        :func:`sciconv.augment.augment_batch` (``brightness``, ``contrast``, ``gaussian_noise``,
        ``poisson_noise``; ``d4``/``crop`` False to turn those off). Default False.
    normalize : str, dict, NormSpec or None, optional
        ``"default"`` (:data:`sciconv.preprocess.DEFAULT_NORMALIZATION`), a method name, a spec
        dict or :class:`~sciconv.preprocess.NormSpec`, or None (raw float32); see
        :func:`sciconv.preprocess.resolve_normalization`. Applied per image on the whole image,
        before cropping; NaN and infinite pixels are then filled as prediction fills them
        (:data:`sciconv.preprocess.BAD_PIXEL_FILL`).
    size_policy : {"auto", "crop", "pad", "resize"}, optional
        ``"crop"``: cut a window of ``image_size`` (centre; random when augmenting), zero-pad
        smaller images. ``"pad"``: zero-pad to ``image_size``, never crop (a larger image is an
        error). ``"resize"``: resample (bilinear, anti-aliased) to ``image_size``. ``"auto"``
        (default): crop an image up to :data:`~sciconv.datasets.prepare.AUTO_CROP_MAX` (1.5)
        times ``image_size`` along each side, resample a larger one (256 px galaxy cutouts and
        ``image_size=64``: cropped, their central 6 % was kept, held-out ROC AUC 0.80;
        resampled, 0.998). Recorded in the model; :func:`~sciconv.inference.predict_files`
        prepares files the same way.
    cache : "auto", bool or path, optional
        ``"auto"`` (default): in memory when the decoded images fit
        :data:`~sciconv.datasets.CACHE_BUDGET`, else decoded lazily every epoch. True: always in
        memory. False: always lazy. A path: lazy, with a TensorFlow cache file
        (``<path>.<fingerprint>.train``/``.val``).
    strict : bool, optional
        Unreadable or non-image files are an error instead of a warning. Default False.

    Returns
    -------
    tf.data.Dataset or (tf.data.Dataset, tf.data.Dataset)
        Batches ``(x, y)``: x float32 ``(N, H, W, C)``, y int32 ``(N,)``. ``(train, val)`` when
        ``validation_split`` is given. Every training batch (the order of its pass, its crops
        and augmentation) is a function of ``seed`` and its index in an endless stream of
        passes: ``train.resume_at(n)`` is that stream from batch ``n`` on (what
        :func:`sciconv.training.fit` trains on, and resumes a run with), ``.steps_per_epoch``
        the batches of one pass; iterated directly, ``train`` yields one pass, a new one each
        time (this applies to :func:`from_catalog` and :func:`from_arrays` too).

    Raises
    ------
    DatasetError
        Missing, unreadable (permission denied) or empty folder, fewer than two class
        sub-folders, a class with no readable image, different channel counts, different sizes
        without ``image_size``, an empty split.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from astropy.io import fits
    >>> from sciconv.datasets import from_folder
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ["a", "b"]:
    ...     (root / name).mkdir()
    ...     for i in range(3):
    ...         fits.writeto(root / name / f"{i}.fits", np.eye(6, dtype="float32") * i)
    >>> ds = from_folder(root, image_size=4, batch_size=6, shuffle=False)
    >>> x, y = next(iter(ds))
    >>> tuple(x.shape), y.numpy().tolist()
    ((6, 4, 4, 1), [0, 0, 0, 1, 1, 1])
    """
    if not isinstance(path, (str, os.PathLike, bytes)):  # bytes: user_path says what to do
        raise DatasetError(
            f"path must be one folder holding a subfolder per class; got {type(path).__name__} "
            "(files with their labels: sciconv.datasets.from_catalog, or from_arrays)"
        )
    folder = user_path(path, error=DatasetError)  # ~ expanded; a URL refused
    folder = find_same_name(folder) or folder  # typed in NFC, on disk in NFD (a Mac's copy)
    check_name_length(folder, error=DatasetError)
    if isinstance(cache, (str, os.PathLike, bytes)) and cache != "auto":  # a file: ~ expanded
        cache = user_path(cache, what="cache")
    try:
        class_dirs, paths, labels, skipped = _scan_class_folders(folder)
    except OSError as err:  # permission denied, I/O error, a folder vanishing mid-scan
        raise _unreadable(err, folder) from None
    labels_arr = np.asarray(labels, dtype=np.int32)

    def check_empty(good):
        present = set(labels_arr[good].tolist())
        for c, d in enumerate(class_dirs):
            if c not in present:
                raise DatasetError(f"class folder {d.name!r} holds no readable image", path=d)

    built = build_image_datasets(
        paths,
        labels_arr,
        skipped=skipped,
        what=str(folder),
        task="classification",
        class_names=[d.name for d in class_dirs],
        strata=labels_arr,
        image_size=image_size,
        validation_split=validation_split,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        augment=augment,
        normalize=normalize,
        size_policy=size_policy,
        cache=cache,
        strict=strict,
        check_empty=check_empty,
    )
    fraction = None if validation_split is None else float(validation_split)  # checked there
    source = {"kind": "folder", "path": os.path.abspath(folder)}  # recorded by fit
    for ds in built if isinstance(built, tuple) else (built,):
        attach(ds, validation_split=fraction, source=source)  # .file_paths: checked on resume
    return built
