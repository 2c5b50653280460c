"""Which block keeps which object: the block grid, the ownership rule and the lost-object check.

Ownership rule (each object kept exactly once, never split at a seam): an object of a window is
*whole* there when it touches no window edge that is not an image edge. Of all the windows in
which an object can be whole, its **owner** is the block whose core holds the centre of the
object's bounding box, or, when the object is not whole in that window (an object larger than
the margin), the candidate block whose core is nearest that centre. Every window that sees the
object whole computes the same owner from the object's own pixels, so the object is kept once,
with its whole footprint (which may reach into a neighbouring core). Objects cut in every window
(wider than the margin allows) are kept in pieces by the block holding each piece's centre.

A block cannot see whether the block it leaves an object to really sees it whole (an object
larger than the margin, or labelled differently near a window edge, may be cut there too), so
every piece a block leaves to another is checked after the last block (:func:`lost_pieces`): a
piece whose innermost pixel no block labelled is counted, grouped into objects, and reported.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import ndimage as ndi

from sciconv.io._common import warn_caller


@dataclasses.dataclass(frozen=True)
class BlockPlan:
    """The block grid of an image: cores of ``block`` pixels, windows ``margin`` wider.

    Attributes
    ----------
    shape : (int, int)
        The image's ``(H, W)``.
    block : int
        Side of a block's core in pixels (the last row and column of cores may be smaller).
    margin : int
        Context in pixels added on each side of a core to make its window (clipped at the image
        edges).

    Examples
    --------
    >>> from sciconv.inference import BlockPlan
    >>> plan = BlockPlan((100, 70), block=40, margin=8)
    >>> plan.grid, plan.window(1, 1)
    ((3, 2), ((32, 88), (32, 70)))
    """

    shape: tuple[int, int]
    block: int
    margin: int

    @property
    def grid(self) -> tuple[int, int]:
        return tuple(math.ceil(n / self.block) for n in self.shape)

    def core(self, i: int, j: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """``((y0, y1), (x0, x1))`` of the core of block ``(i, j)``.

        Parameters
        ----------
        i, j : int
            The block's row and column in :attr:`grid`.
        """
        b = self.block
        return tuple((k * b, min((k + 1) * b, n)) for k, n in zip((i, j), self.shape, strict=True))

    def window(self, i: int, j: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """``((y0, y1), (x0, x1))`` of the window of block ``(i, j)`` (core + margin, clipped).

        Parameters
        ----------
        i, j : int
            The block's row and column in :attr:`grid`.
        """
        m = self.margin
        return tuple(
            (max(lo - m, 0), min(hi + m, n))
            for (lo, hi), n in zip(self.core(i, j), self.shape, strict=True)
        )

    def _axis_candidates(self, lo: int, hi: int, axis: int) -> list[int]:
        """Blocks along ``axis`` whose window holds ``[lo, hi)`` without touching a cut edge."""
        n, b, m = self.shape[axis], self.block, self.margin
        out = []
        for k in range(max(0, (lo - m) // b - 1), min(self.grid[axis], hi // b + 2)):
            w0, w1 = max(k * b - m, 0), min((k + 1) * b + m, n)
            if (lo > w0 or w0 == 0) and (hi < w1 or w1 == n):
                out.append(k)
        return out

    def owner(self, box: tuple[int, int, int, int]) -> tuple[int, int] | None:
        """The block owning an object with bounding box ``(y0, x0, y1, x1)`` (max exclusive).

        None when no window holds the object whole.

        Parameters
        ----------
        box : (int, int, int, int)
            The object's bounding box ``(y0, x0, y1, x1)`` in image pixels, max exclusive.

        Returns
        -------
        (int, int) or None
            The owning block's ``(i, j)``.
        """
        y0, x0, y1, x1 = box
        cy, cx = (y0 + y1 - 1) // 2, (x0 + x1 - 1) // 2
        rows = self._axis_candidates(y0, y1, 0)
        cols = self._axis_candidates(x0, x1, 1)
        if not rows or not cols:
            return None
        home = (cy // self.block, cx // self.block)
        if home[0] in rows and home[1] in cols:
            return home

        def distance(k: int, c: int, axis: int) -> int:
            lo, hi = k * self.block, min((k + 1) * self.block, self.shape[axis]) - 1
            return max(lo - c, c - hi, 0)

        return min(
            ((i, j) for i in rows for j in cols),
            key=lambda ij: (max(distance(ij[0], cy, 0), distance(ij[1], cx, 1)), ij),
        )

    def whole_elsewhere(self, box, here: tuple[int, int]) -> bool:
        """Whether a window other than ``here``'s could hold an object seen cut here.

        Parameters
        ----------
        box : (int, int, int, int)
            The object's bounding box ``(y0, x0, y1, x1)`` in image pixels, max exclusive.
        here : (int, int)
            The ``(i, j)`` of the block whose window sees the object cut.
        """
        y0, x0, y1, x1 = box
        rows = self._axis_candidates(y0, y1, 0)
        cols = self._axis_candidates(x0, x1, 1)
        return any((r, c) != here for r in rows for c in cols)


@dataclasses.dataclass(frozen=True)
class Piece:
    """An object of one window, in image coordinates: its mask from ``(y0, x0)``, a deep pixel."""

    y0: int
    x0: int
    mask: np.ndarray  # bool, the object's bounding box
    inner: tuple[int, int]  # the pixel farthest from the piece's edge (image coordinates)
    at_edge: bool = False  # cut by its window's edge inside the image (a partial view)
    #: of a piece cut by its window and left to another block: its pixels in this block's
    #: core (None: none), which no block keeps when that block cuts the object too
    core_part: np.ndarray | None = None


def _piece(labels: np.ndarray, sl, lab: int, origin: tuple[int, int]) -> Piece:
    mask = labels[sl] == lab
    depth = ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    iy, ix = np.unravel_index(int(np.argmax(depth)), mask.shape)
    y0, x0 = origin[0] + sl[0].start, origin[1] + sl[1].start
    return Piece(y0, x0, mask, (y0 + int(iy), x0 + int(ix)))


def select_owned(labels: np.ndarray, plan: BlockPlan, index: tuple[int, int]):
    """The objects of block ``index``'s window labels that this block keeps.

    Returns ``(keep, cut, left)``: ``keep`` an int32 flag per label (0..max), ``cut`` the pieces
    kept of objects no window holds whole (each block keeps the part in its core: ``labels``
    loses the rest of such an object in place, so the pieces never overlap), ``left`` the
    :class:`Piece` of every object left to another block (checked by :func:`lost_pieces` after
    the last block).

    Examples
    --------
    >>> plan = BlockPlan((8, 16), block=8, margin=2)
    >>> labels = np.zeros((8, 10), np.int32); labels[2:4, 1:3] = 1; labels[4:6, 7:10] = 2
    >>> keep, cut, left = select_owned(labels, plan, (0, 0))
    >>> keep.tolist(), cut, [(p.y0, p.x0) for p in left]  # object 2 is whole in block (0, 1)
    ([0, 1, 0], [], [(4, 7)])
    """
    i, j = index
    (wy0, _), (wx0, _) = plan.window(i, j)
    (cy0, cy1), (cx0, cx1) = plan.core(i, j)
    keep = np.zeros(int(labels.max()) + 1, dtype=np.int32)
    cut, left = [], []
    for lab, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None:
            continue
        box = (sl[0].start + wy0, sl[1].start + wx0, sl[0].stop + wy0, sl[1].stop + wx0)
        owner = plan.owner(box)
        if owner is None and not plan.whole_elsewhere(box, index):
            # cut here and everywhere: keep its part in this block's core (``labels`` is cut
            # down in place), so the pieces of the blocks tile the object, none overlapping
            core = _in_core(sl, (wy0, wx0), (cy0, cy1), (cx0, cx1))
            sub = labels[sl]
            mine = sub == lab
            if (mine & core).any():
                sub[mine & ~core] = 0
                keep[lab] = 1
                cut.append(_piece(labels, sl, lab, (wy0, wx0)))
            continue
        elif owner == index:
            keep[lab] = 1
            continue
        piece = _piece(labels, sl, lab, (wy0, wx0))
        at_edge = _at_window_edge(sl, labels.shape, plan, index)
        part = None
        if at_edge:  # seen in part: the owner of that part may cut the object too
            part = piece.mask & _in_core(sl, (wy0, wx0), (cy0, cy1), (cx0, cx1))
        left.append(
            dataclasses.replace(
                piece, at_edge=at_edge, core_part=part if part is not None and part.any() else None
            )
        )
    return keep, cut, left


def _in_core(sl, origin, core_rows, core_cols) -> np.ndarray:
    """Which pixels of the box ``sl`` (window coordinates; ``origin`` the window's corner in
    the image) lie in the block's core ``core_rows`` x ``core_cols`` (image coordinates)."""
    rows = np.arange(sl[0].start, sl[0].stop) + origin[0]
    cols = np.arange(sl[1].start, sl[1].stop) + origin[1]
    return ((rows >= core_rows[0]) & (rows < core_rows[1]))[:, None] & (
        (cols >= core_cols[0]) & (cols < core_cols[1])
    )


def _at_window_edge(sl, window_hw, plan: BlockPlan, index) -> bool:
    """Whether an object's box ``sl`` (window coordinates) reaches an edge of block ``index``'s
    window that lies inside the image (the window saw only part of it)."""
    (wy0, wy1), (wx0, wx1) = plan.window(*index)
    h, w = plan.shape
    return (
        (sl[0].start == 0 and wy0 > 0)
        or (sl[1].start == 0 and wx0 > 0)
        or (sl[0].stop == window_hw[0] and wy1 < h)
        or (sl[1].stop == window_hw[1] and wx1 < w)
    )


def _values_at(array, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    if isinstance(array, np.ndarray):
        return array[ys, xs]
    return np.asarray(array.vindex[ys, xs])  # zarr: each chunk read once


def group_pieces(pieces: list[Piece]) -> list[tuple[int, int, int, int]]:
    """Bounding boxes ``(y0, x0, y1, x1)`` of the objects the pieces form (pieces that overlap or
    touch, 8-connected, are one: the blocks' parts of a cut object meet at the seams).

    Examples
    --------
    >>> a = Piece(0, 0, np.ones((2, 4), bool), (0, 1))
    >>> b = Piece(1, 3, np.ones((3, 2), bool), (2, 3))
    >>> group_pieces([a, b, Piece(9, 9, np.ones((1, 1), bool), (9, 9))])
    [(0, 0, 4, 5), (9, 9, 10, 10)]
    """
    parent = list(range(len(pieces)))

    def root(k):
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    boxes = [(p.y0, p.x0, p.y0 + p.mask.shape[0], p.x0 + p.mask.shape[1]) for p in pieces]
    # each mask grown by one pixel (from y0 - 1, x0 - 1): touching pieces then overlap
    grown = [ndi.binary_dilation(np.pad(p.mask, 1), np.ones((3, 3), bool)) for p in pieces]
    for a in range(len(pieces)):
        ga = (boxes[a][0] - 1, boxes[a][1] - 1, boxes[a][2] + 1, boxes[a][3] + 1)
        for b in range(a + 1, len(pieces)):
            y0, x0 = max(ga[0], boxes[b][0]), max(ga[1], boxes[b][1])
            y1, x1 = min(ga[2], boxes[b][2]), min(ga[3], boxes[b][3])
            if y0 >= y1 or x0 >= x1:
                continue
            pb = pieces[b]
            ma = grown[a][y0 - ga[0] : y1 - ga[0], x0 - ga[1] : x1 - ga[1]]
            mb = pb.mask[y0 - pb.y0 : y1 - pb.y0, x0 - pb.x0 : x1 - pb.x0]
            if (ma & mb).any():
                parent[root(a)] = root(b)
    groups: dict[int, list[int]] = {}
    for k in range(len(pieces)):
        groups.setdefault(root(k), []).append(k)
    out = []
    for members in groups.values():
        bs = np.array([boxes[k] for k in members])
        out.append(
            (int(bs[:, 0].min()), int(bs[:, 1].min()), int(bs[:, 2].max()), int(bs[:, 3].max()))
        )
    return sorted(out)


def lost_pieces(left: list[Piece], labels) -> list[Piece]:
    """The pieces left to another block whose innermost pixel no block labelled.

    Examples
    --------
    >>> labels = np.zeros((6, 6), np.int32); labels[0:2, 0:2] = 1
    >>> kept = Piece(0, 0, np.ones((2, 2), bool), (0, 0))
    >>> lost = Piece(4, 4, np.ones((2, 2), bool), (4, 4))
    >>> [(p.y0, p.x0) for p in lost_pieces([kept, lost], labels)]
    [(4, 4)]
    """
    if not left:
        return []
    ys = np.array([p.inner[0] for p in left])
    xs = np.array([p.inner[1] for p in left])
    values = _values_at(labels, ys, xs)
    return [p for p, v in zip(left, values, strict=True) if v == 0]


def dropped_parts(left: list[Piece], labels) -> list[Piece]:
    """The parts of objects wider than every window that no block kept: of each piece left to
    another block by a window that cut it (:attr:`Piece.core_part`), its pixels in that block's
    core that no block labelled (the block it was left to cut the object too and kept only its
    own core's part; review: a 40 x 390 halo lost 640 px at block 128, margin 24).

    Examples
    --------
    >>> labels = np.zeros((4, 8), np.int32); labels[:, 4:6] = 7  # another block's part
    >>> part = np.zeros((4, 6), bool); part[:, 2:6] = True  # this block's core: columns 4:8
    >>> seen = Piece(0, 2, np.ones((4, 6), bool), (2, 4), at_edge=True, core_part=part)
    >>> [int(p.mask.sum()) for p in dropped_parts([seen], labels)]  # columns 6:8 kept by none
    [8]
    """
    out = []
    for piece in left:
        if piece.core_part is None:
            continue
        h, w = piece.core_part.shape
        region = np.asarray(labels[piece.y0 : piece.y0 + h, piece.x0 : piece.x0 + w])
        missing = piece.core_part & (region == 0)
        if missing.any():
            box = ndi.find_objects(missing.astype(np.int8))[0]  # cropped to its pixels
            out.append(_piece(missing.astype(np.int8), box, 1, (piece.y0, piece.x0)))
    return out


#: Small objects one window labelled and their owner's did not are said when they are more than
#: this share of all objects: a few faint ones flip between windows on any real run (1 of 2,885
#: nuclei on a 4096² mosaic whose block-wise labels equal the whole-image ones)
LOST_SHARE = 0.02


def report_pieces(
    plan: BlockPlan, cut: list, lost: list, divisor: int, *, total: int = 0, dropped=()
) -> None:
    """One warning per kind of object the margin was too small for: how many, where, what margin
    (small objects a neighbour labelled: only when more than :data:`LOST_SHARE` of ``total``).

    ``cut``: the pieces of objects no window held whole; ``lost``: :func:`lost_pieces`;
    ``dropped``: :func:`dropped_parts` (said with the pixels missing).

    Examples
    --------
    >>> report_pieces(BlockPlan((100, 100), block=50, margin=16), [], [], 16)  # nothing to say
    """
    for pieces, what in (
        (cut, "are wider than every block window and were kept in pieces (split at seams)"),
        (
            lost,
            "were cut in every block window that could hold them and are MISSING from the labels",
        ),
    ):
        if not pieces:
            continue
        objects = group_pieces(pieces)
        side, where = _extent(objects)
        need = -(-(side + 1) // divisor) * divisor
        if pieces is lost and need <= plan.margin:  # small enough: the margin is not the cause
            # seen whole by the window that left them (pieces that window's own edge cut are a
            # partial view, which its owner, seeing all of it, judged otherwise: not said)
            objects = group_pieces([p for p in pieces if not p.at_edge])
            if len(objects) <= LOST_SHARE * (total + len(objects)):
                continue
            side, where = _extent(objects)
            warn_caller(
                f"{len(objects)} object(s) of at most {side} px were labelled by a neighbouring "
                "block's window but not by the window of the block that owns them, so they are "
                f"not in the labels ({where}): the two windows see different surroundings near "
                f"their edges, not too small a margin ({plan.margin} px); typically faint "
                "detections that a whole-image run may not find either",
                "sciconv",
            )
            continue
        warn_caller(
            f"{len(objects)} object(s) {what} (block margin {plan.margin} px; {where}; the "
            f"largest is {side} px across); raise margin= to at least {need} (or max_object=; "
            f"sciconv predict --block-margin {need})",
            "sciconv",
        )
    if dropped:
        objects = group_pieces(list(dropped))
        side, where = _extent(objects)
        pixels = sum(int(p.mask.sum()) for p in dropped)
        warn_caller(
            f"{pixels} px of objects wider than every block window are MISSING from the labels "
            f"and the catalog ({len(objects)} part(s); {where}): two blocks each left them to "
            "the other, both cutting the object, so its pieces do not tile it; raise margin= "
            "beyond the largest object (sciconv predict --block-margin) to keep such objects "
            "whole",
            "sciconv",
        )


def report_stitching(plan: BlockPlan, ran: dict, labels, divisor: int) -> None:
    """After the last block: :func:`report_pieces` of a run's cut pieces, of the pieces it left
    to other blocks that are missing from the written ``labels`` (:func:`lost_pieces`) and of
    the parts of wide objects no block kept (:func:`dropped_parts`); ``ran``: the blocks'
    ``"cut"``, ``"left"`` and ``"objects"`` (their count).

    Examples
    --------
    >>> plan = BlockPlan((100, 100), block=50, margin=16)
    >>> report_stitching(plan, {"cut": [], "left": [], "objects": 0}, np.zeros((100, 100)), 16)
    """
    left = ran["left"]
    lost, dropped = lost_pieces(left, labels), dropped_parts(left, labels)
    report_pieces(plan, ran["cut"], lost, divisor, total=ran["objects"], dropped=dropped)


def _extent(objects: list) -> tuple[int, str]:
    """The largest side of ``objects`` (boxes ``(y0, x0, y1, x1)``) and where the first is."""
    side = max(max(y1 - y0, x1 - x0) for y0, x0, y1, x1 in objects)
    y0, x0, y1, x1 = objects[0]
    return side, f"the first at rows {y0}:{y1}, columns {x0}:{x1}"


__all__ = [
    "LOST_SHARE",
    "BlockPlan",
    "Piece",
    "dropped_parts",
    "group_pieces",
    "lost_pieces",
    "report_pieces",
    "report_stitching",
    "select_owned",
]
