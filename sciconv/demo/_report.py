"""The demo's report: headline lines, report.md and the JSON form of the metrics."""

from __future__ import annotations

from typing import Any

import numpy as np

from sciconv.demo._settings import DemoSettings


def headline(result: dict[str, Any]) -> list[str]:
    """One line per headline metric of a :func:`run` result.

    Parameters
    ----------
    result : dict
        What :func:`run` returns; each part present (``galaxies``, ``cells``, ``sky``,
        ``real_nuclei``) gives its line(s), missing parts none.

    Returns
    -------
    list of str

    Examples
    --------
    >>> from sciconv.demo import headline
    >>> headline({"galaxies": {"accuracy": 0.9, "n_test": 30, "n_classes": 3}})
    ['galaxy classifier: held-out accuracy 0.900 on 30 images (chance 0.33)']
    """
    lines = []
    g = result.get("galaxies")
    if g:
        lines.append(
            f"galaxy classifier: held-out accuracy {g['accuracy']:.3f} on {g['n_test']} images "
            f"(chance {1 / g['n_classes']:.2f})"
        )
    c = result.get("cells")
    if c:
        lines.append(
            f"nuclei segmenter (simulated cells): held-out foreground IoU {c['iou']:.3f}, "
            f"pooled AP@0.5 {c['ap50']:.3f}, mean AP@0.5:0.9 {c['mean_ap']:.3f} ({c['n_test']} "
            "images)"
        )
    s = result.get("sky")
    if s:
        lines.append(
            f"sky field: {s['n_detected']} detections for {s['n_truth']} true sources; "
            f"completeness {s['completeness']:.3f} (bright half {s['completeness_bright']:.3f}), "
            f"purity {s['purity']:.3f}, median offset {s['median_offset']:.3f} {s['offset_unit']}"
        )
    r = result.get("real_nuclei")
    if r:
        lines.append(
            f"pretrained nuclei model on real images: pooled AP@0.5 {r['ap50']:.3f}, mean "
            f"AP@0.5:0.9 {r['mean_ap']:.3f} ({r['n_images']} images never seen in training)"
        )
        b = r.get("brightfield")
        if b:
            lines.append(
                "pretrained nuclei model on real brightfield images: pooled AP@0.5 "
                f"{b['ap50']:.3f}, mean AP@0.5:0.9 {b['mean_ap']:.3f} ({b['n_images']} images "
                "never seen in training)"
            )
    return lines


def render_report(result: dict[str, Any], settings: DemoSettings, fast: bool) -> str:
    lines = [
        "# sciconv demo report",
        "",
        f"Mode: {'fast (tiny models, for tests)' if fast else 'default'}; seed {settings.seed}; "
        f"total time {result['seconds']:.0f} s.",
        "",
        "## Headline metrics",
        "",
        *[f"- {line}" for line in headline(result)],
        "",
    ]
    g = result["galaxies"]
    lines += [
        "## 1. Galaxy morphology classifier",
        "",
        f"Conv–pool–dense classifier on the bundled FITS cutouts ({', '.join(g['class_names'])}), "
        f"evaluated on a held-out quarter: accuracy **{g['accuracy']:.3f}** on {g['n_test']} "
        "images. Model: `models/galaxy_classifier.keras`.",
        "",
        f"![training curves]({g['figures']['curves']})",
        f"![confusion matrix]({g['figures']['confusion']})",
        f"![Grad-CAM]({g['figures']['gradcam']})",
        "",
    ]
    c = result["cells"]
    lines += [
        "## 2. Nuclei segmentation (simulated cells)",
        "",
        "U-Net (background / foreground) and a distance-transform watershed into instances, "
        f"evaluated on {c['n_test']} held-out images: foreground IoU **{c['iou']:.3f}**, "
        f"pooled AP@0.5 **{c['ap50']:.3f}**, mean AP@0.5:0.9 **{c['mean_ap']:.3f}**. "
        "Model: `models/nuclei_segmenter.keras`; labels in `predictions/`.",
        "",
        f"![training curves]({c['figures']['curves']})",
        f"![held-out overlay]({c['figures']['overlay']})",
        "",
    ]
    s = result["sky"]
    lines += [
        "## 3. Source detection on the sky field",
        "",
        "A small U-Net trained on a separately simulated field, run tile by tile over the bundled "
        f"field ({s['seconds']:.1f} s). {s['n_detected']} detections for {s['n_truth']} true "
        f"sources: completeness **{s['completeness']:.3f}** (bright half "
        f"{s['completeness_bright']:.3f}), purity **{s['purity']:.3f}**, median offset "
        f"{s['median_offset']:.3f} {s['offset_unit']}. Written with the field's WCS: "
        "`predictions/sky_field_prob.fits` (one probability plane per class: sky, source), "
        "`predictions/sky_field_labels.fits`, catalog "
        "`predictions/sky_catalog.ecsv`" + (" (with RA/Dec)." if s["has_radec"] else "."),
        "",
        f"![sky field]({s['figures']['field']})",
        f"![catalog comparison]({s['figures']['catalog']})",
        "",
    ]
    r = result["real_nuclei"]
    lines += [
        "## 4. Pretrained nuclei model on real images",
        "",
        f"`sciconv.models.pretrained('nuclei')` on {r['n_images']} real fluorescence images "
        "(Data Science Bowl 2018, held out from its training), no training: "
        f"pooled AP@0.5 **{r['ap50']:.3f}**, mean AP@0.5:0.9 **{r['mean_ap']:.3f}** (TP, FP and "
        "FN summed over the images before the ratio, as StarDist pools them; a mean of the "
        "per-image APs weighs sparse images more)."
        + (
            f" On {r['brightfield']['n_images']} real brightfield images (H&E colour and grey "
            "brightfield, passed as read; the model's stored input transform keeps colour and "
            "flips bright backgrounds so that nuclei are bright): pooled AP@0.5 "
            f"**{r['brightfield']['ap50']:.3f}**, mean AP@0.5:0.9 "
            f"**{r['brightfield']['mean_ap']:.3f}**."
            if r.get("brightfield")
            else ""
        ),
        "",
        f"![real nuclei]({r['figures']['overlay']})",
        "",
    ]
    return "\n".join(lines)


def jsonable(obj):
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    return obj
